using IoTHubMqtt.Emulator.Hub;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Emulator.Tests.Hub;

/// <summary>C2D queues on their own, on a fake clock: limits, locks, completion, expiry and dead-lettering, with their feedback.</summary>
public sealed class CloudToDeviceQueuesTests
{
    private readonly object gate = new();
    private readonly RecordingHubStore store = new();
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero));
    private readonly IoTHubEmulatorOptions options;
    private readonly DeviceRegistry registry;
    private readonly FeedbackLog feedback;
    private readonly CloudToDeviceQueues queues;

    public CloudToDeviceQueuesTests()
    {
        options = new IoTHubEmulatorOptions { TimeProvider = clock, CloudToDeviceMaxDeliveryCount = 2 };
        var log = new EmulatorLog(null);
        registry = new DeviceRegistry(gate, store, clock, log);
        feedback = new FeedbackLog(gate, store, clock);
        queues = new CloudToDeviceQueues(gate, store, registry, feedback, options, log);
        registry.Removing += queues.Forget;
        registry.Put("dev1", null, [], null);
    }

    [Fact]
    public void Enqueue_UpToTheLimit_ThenQueueFull()
    {
        for (var i = 0; i < CloudToDeviceQueues.MaxQueued; i++)
        {
            Send($"m{i}");
        }

        var error = Assert.Throws<HubError>(() => Send("one too many"));

        Assert.Equal("DeviceMaximumQueueDepthExceeded", error.Code);
        Assert.Equal(CloudToDeviceQueues.MaxQueued, queues.QueuedCount("dev1"));
        Assert.Equal(CloudToDeviceQueues.MaxQueued, store.CloudToDevice.Count);
    }

    [Fact]
    public void Enqueue_ForAnUnknownDeviceOrAModule_IsNotFound_AndTooLargeIsRefused()
    {
        registry.Put("dev1", "mod", [], null);

        Assert.Equal(404, Assert.Throws<HubError>(() => queues.Enqueue("nobody", [1], new Dictionary<string, string>(), null, null, null, null, null, null, null)).Status);
        Assert.Equal(404, Assert.Throws<HubError>(() => queues.Enqueue("dev1/mod", [1], new Dictionary<string, string>(), null, null, null, null, null, null, null)).Status);
        Assert.Equal(413, Assert.Throws<HubError>(() => queues.Enqueue("dev1", new byte[CloudToDeviceQueues.MaxMessageBytes + 1], new Dictionary<string, string>(), null, null, null, null, null, null, null)).Status);
        Assert.Empty(store.CloudToDevice);
    }

    [Fact]
    public void Delivered_IsLockedUntilCompleted_ThenGoneWithPositiveFeedback()
    {
        var available = new List<string>();
        queues.Available += available.Add;
        Send("m1", ack: "positive");

        Assert.Equal(["m1"], queues.TakeDeliverable("dev1").Select(m => m.MessageId));
        Assert.Empty(queues.TakeDeliverable("dev1")); // locked
        Assert.True(queues.Complete("dev1", "m1"));

        Assert.Equal(["dev1"], available);
        Assert.Equal(0, queues.QueuedCount("dev1"));
        Assert.Empty(store.CloudToDevice);
        Assert.Equal("Success", Assert.Single(store.Feedback.Values).StatusCode);
    }

    [Fact]
    public void Lock_RunsOut_OnTheClock_AndTheMessageIsSentAgain_ThenDeadLettered()
    {
        Send("m1", ack: "full");
        Assert.Single(queues.TakeDeliverable("dev1"));

        clock.Advance(options.CloudToDeviceLockDuration);
        Assert.Equal(["dev1"], queues.DevicesWithExpiredLocks());
        Assert.Equal(2, Assert.Single(queues.TakeDeliverable("dev1")).DeliveryCount);

        clock.Advance(options.CloudToDeviceLockDuration + TimeSpan.FromSeconds(1));
        Assert.Empty(queues.TakeDeliverable("dev1"));
        Assert.Equal(0, queues.QueuedCount("dev1"));
        Assert.Equal("DeliveryCountExceeded", Assert.Single(store.Feedback.Values).StatusCode);
    }

    [Fact]
    public void Expired_IsDropped_WithNegativeFeedback_AndNoneForPositiveOnly()
    {
        Send("neg", ack: "negative");
        Send("pos", ack: "positive");

        clock.Advance(options.CloudToDeviceDefaultTimeToLive);

        Assert.Empty(queues.TakeDeliverable("dev1"));
        var record = Assert.Single(store.Feedback.Values);
        Assert.Equal(("neg", "Expired"), (record.OriginalMessageId, record.StatusCode));
    }

    [Fact]
    public void Abandoned_WhenTheDeviceGoesAway_IsDeliverableAgain()
    {
        Send("m1");
        Assert.Single(queues.TakeDeliverable("dev1"));

        queues.AbandonLocked("dev1");

        Assert.Single(queues.TakeDeliverable("dev1"));
    }

    [Fact]
    public void DeletedDevice_TakesItsQueueWithIt_AndARecreatedOneStartsEmpty()
    {
        Send("m1");

        registry.Delete("dev1", null);
        registry.Put("dev1", null, [], null);

        Assert.Equal(0, queues.QueuedCount("dev1"));
        Assert.Empty(queues.TakeDeliverable("dev1"));
        Assert.Empty(store.CloudToDevice);
    }

    [Fact]
    public void Load_KeepsNumberingAfterWhatTheStoreHeld()
    {
        Send("m1");
        Send("m2");
        var reloaded = new CloudToDeviceQueues(gate, store, registry, feedback, options, new EmulatorLog(null));

        reloaded.Load(store.LoadCloudToDevice());
        var next = reloaded.Enqueue("dev1", [1], new Dictionary<string, string>(), "m3", null, null, null, null, null, null);

        Assert.Equal(3, reloaded.QueuedCount("dev1"));
        Assert.Equal(3, next.SequenceNumber);
    }

    private void Send(string messageId, string? ack = null) =>
        queues.Enqueue("dev1", [1, 2, 3], new Dictionary<string, string>(), messageId, null, null, null, null, ack, null);
}
