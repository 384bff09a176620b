using IoTHubMqtt.Emulator.Hub;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Emulator.Tests.Hub;

/// <summary>The feedback log on its own: what is kept, in what order, how readers take and give back, on a fake clock.</summary>
public sealed class FeedbackLogTests
{
    private readonly object gate = new();
    private readonly RecordingHubStore store = new();
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero));
    private readonly FeedbackLog feedback;

    public FeedbackLogTests() => feedback = new FeedbackLog(gate, store, clock);

    [Theory]
    [InlineData("full", "Success", true)]
    [InlineData("full", "Expired", true)]
    [InlineData("positive", "Success", true)]
    [InlineData("positive", "Expired", false)]
    [InlineData("negative", "DeliveryCountExceeded", true)]
    [InlineData("negative", "Success", false)]
    [InlineData("none", "Success", false)]
    [InlineData(null, "Success", false)]
    public void Add_KeepsOnlyWhatTheSenderAskedFor(string? ack, string status, bool kept)
    {
        feedback.Add(Message("m1", ack), status);

        Assert.Equal(kept ? 1 : 0, feedback.Count);
        Assert.Equal(kept ? 1 : 0, store.Feedback.Count);
    }

    [Fact]
    public async Task Take_OldestFirst_AndReturn_PutsThemBackInOrder()
    {
        for (var i = 0; i < 5; i++)
        {
            feedback.Add(Message($"m{i}", "full"), "Success");
        }

        var taken = await feedback.TakeAsync(3, TimeSpan.Zero, TestContext.Current.CancellationToken);
        Assert.Equal(["m0", "m1", "m2"], taken.Select(r => r.OriginalMessageId));
        Assert.Equal(2, store.Feedback.Count);

        feedback.Return(taken);
        var all = await feedback.TakeAsync(10, TimeSpan.Zero, TestContext.Current.CancellationToken);

        Assert.Equal(["m0", "m1", "m2", "m3", "m4"], all.Select(r => r.OriginalMessageId));
        Assert.Empty(store.Feedback);
    }

    [Fact]
    public async Task Take_WaitsForTheNextRecord_AndGivesUpOnTheClock()
    {
        var waiting = feedback.TakeAsync(10, TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.False(waiting.IsCompleted);

        feedback.Add(Message("m1", "full"), "Success");

        Assert.Equal("m1", Assert.Single(await waiting).OriginalMessageId);

        var empty = feedback.TakeAsync(10, TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Empty(await empty.WaitAsync(TimeSpan.FromMinutes(2), TestContext.Current.CancellationToken));
    }

    [Fact]
    public void BeyondTheLimit_TheOldestIsDropped_FromMemoryAndStore()
    {
        for (var i = 0; i <= FeedbackLog.MaxWaiting; i++)
        {
            feedback.Add(Message($"m{i}", "full"), "Success");
        }

        Assert.Equal(FeedbackLog.MaxWaiting, feedback.Count);
        Assert.Equal(FeedbackLog.MaxWaiting, store.Feedback.Count);
        Assert.DoesNotContain(store.Feedback.Values, r => r.OriginalMessageId == "m0");
    }

    [Fact]
    public void Load_KeepsTheNewest_AndNumbersAfterThem()
    {
        store.SaveFeedback(new CloudToDeviceFeedback(7, "old", "dev1", "Success", DateTime.UnixEpoch));
        feedback.Load(store.LoadFeedback());

        feedback.Add(Message("new", "full"), "Success");

        Assert.Equal([7L, 8L], store.Feedback.Keys.Order());
    }

    private static CloudToDeviceMessage Message(string id, string? ack) => new()
    {
        SequenceNumber = 1,
        DeviceId = "dev1",
        MessageId = id,
        Body = [],
        Ack = ack,
    };
}
