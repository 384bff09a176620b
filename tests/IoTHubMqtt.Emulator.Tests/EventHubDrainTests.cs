using System.Text;
using Amqp;
using Amqp.Framing;
using Amqp.Sasl;
using Amqp.Types;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// Link drain on the Event Hub-compatible endpoint, as an AMQPNetLite receiver sees it. AMQP 1.0 section 2.6.7 (flow
/// control, "drain"): a receiver that sets drain asks the sender to use up all its link credit — "If the sender's drain
/// flag is set and there are no available messages, the sender MUST advance its delivery-count until link-credit is zero,
/// and send its updated flow state to the receiver." So after a drain the receiver has had every event there was (up to
/// its credit) and a flow with link-credit 0 and delivery-count = the limit it granted (its delivery-count plus
/// link-credit), and no event comes on that link until it grants credit again.
/// <para>
/// AMQPNetLite takes the sender's flows in without reporting them, so each connection runs over <see cref="AmqpFrameTap"/>,
/// which records the frames the client was sent. Each test has an emulator of its own on a clock that does not move: the
/// endpoint's wait for telemetry to arrive (its long-poll, on the hub's clock) never ends by itself, so a drain answered
/// only when that wait ran out would never be answered, and the test fails at its guard instead of passing slowly.
/// </para>
/// </summary>
public sealed class EventHubDrainTests : IAsyncLifetime
{
    /// <summary>Guards against a hang only: no test waits for it to pass.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private readonly EmulatorFixture fixture = EmulatorFixture.Start(options => options.TimeProvider = new FakeTimeProvider(DateTimeOffset.UtcNow));

    private IoTHubEmulator Emulator => fixture.Emulator;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await fixture.DisposeAsync();

    [Fact]
    public async Task Drain_WithFewerEventsThanCredit_DeliversThem_ThenUsesUpTheCredit()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("drain");
        var (tap, connection, session) = await ConnectAsync();
        try
        {
            var receiver = await AttachAsync(session, "drained", device.DeviceId);
            var handle = await tap.PeerHandleAsync("drained", Guard);
            var sent = await PublishAsync(device, "a", "b");

            var granted = tap.Frames.Count - 1;
            receiver.SetCredit(5, CreditMode.Drain);
            var received = await ReceiveAsync(receiver, 2);
            Assert.Equal(sent, received.Select(Body));

            // The two events, then the flow that ends the drain: the 3 credits left are used up (delivery-count 0 + 5).
            var done = await DrainedAsync(tap, handle, granted);
            Assert.Equal(5u, ((Flow)done.Performative!).DeliveryCount);
            Assert.Equal(2, Transfers(tap, handle).Count);
            Assert.All(Transfers(tap, handle), t => Assert.True(t.Index < done.Index));
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    [Fact]
    public async Task Drain_WithNothingToRead_EndsWithNoEvent()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("drain");
        var (tap, connection, session) = await ConnectAsync();
        try
        {
            var receiver = await AttachAsync(session, "empty", device.DeviceId);
            var handle = await tap.PeerHandleAsync("empty", Guard);
            Assert.Equal(0, Emulator.Hub.Telemetry.DescribePartition(Emulator.Hub.PartitionOf(device.DeviceId)).LastSequenceNumber);

            var granted = tap.Frames.Count - 1;
            receiver.SetCredit(3, CreditMode.Drain);
            var done = await DrainedAsync(tap, handle, granted);
            Assert.Equal(3u, ((Flow)done.Performative!).DeliveryCount);
            Assert.Empty(Transfers(tap, handle));
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    /// <summary>
    /// A receiver that already holds credit and then drains with the same limit (delivery-count plus link-credit unchanged,
    /// as a client drains what it granted before): the endpoint, then waiting for telemetry on that credit, answers at
    /// once — the credit the receiver held is used up (delivery-count 1 + 4), not forgotten and not left waiting for the
    /// next event or for its long-poll to run out (on this clock it never does).
    /// </summary>
    [Fact]
    public async Task Drain_OfCreditGrantedBefore_WhileTheEndpointWaitsForTelemetry_EndsAtOnce()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("drain");
        var (tap, connection, session) = await ConnectAsync();
        try
        {
            var receiver = await AttachAsync(session, "held", device.DeviceId);
            var handle = await tap.PeerHandleAsync("held", Guard);
            receiver.SetCredit(5, CreditMode.Manual);
            var sent = await PublishAsync(device, "one");
            Assert.Equal(sent, (await ReceiveAsync(receiver, 1)).Select(Body)); // 4 credits left; the endpoint waits for more

            var draining = tap.Frames.Count - 1;
            receiver.SetCredit(4, CreditMode.Drain);
            var done = await DrainedAsync(tap, handle, draining);
            Assert.Equal(5u, ((Flow)done.Performative!).DeliveryCount);
            Assert.Single(Transfers(tap, handle));
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    /// <summary>
    /// Once drained, the link has no credit: later telemetry waits in the partition, and comes — each event once, in order —
    /// when the receiver grants credit again. A second receiver (another consumer group, on the same connection) shows the
    /// events were in the partition while the drained link got none of them; AMQPNetLite itself also refuses a delivery
    /// beyond the credit it granted (it detaches with amqp:link:transfer-limit-exceeded, and the receive below fails).
    /// </summary>
    [Fact]
    public async Task AfterADrain_LaterEventsWaitForNewCredit_ThenComeInOrderOnce()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("drain");
        var (tap, connection, session) = await ConnectAsync();
        try
        {
            var receiver = await AttachAsync(session, "drained", device.DeviceId);
            var witness = await AttachAsync(session, "witness", device.DeviceId, group: "witness");
            var handle = await tap.PeerHandleAsync("drained", Guard);
            var ownHandle = await tap.OwnHandleAsync("drained", Guard);

            var first = tap.Frames.Count - 1;
            receiver.SetCredit(4, CreditMode.Drain);
            var drained = await DrainedAsync(tap, handle, first);
            Assert.Equal(4u, ((Flow)drained.Performative!).DeliveryCount);

            var sent = await PublishAsync(device, "x", "y", "z");
            witness.SetCredit(10, CreditMode.Manual);
            var seen = await ReceiveAsync(witness, 3);
            Assert.Equal(sent, seen.Select(Body));
            Assert.Empty(Transfers(tap, handle)); // in the partition, and not sent on the drained link

            var regrant = tap.Frames.Count - 1;
            receiver.SetCredit(5, CreditMode.Drain);
            var grant = await tap.NextAsync(regrant, f => f.IsOwnFlow(ownHandle) && ((Flow)f.Performative!).Drain, Guard);
            var received = await ReceiveAsync(receiver, 3);
            Assert.Equal(sent, received.Select(Body));
            Assert.Equal(seen.Select(SequenceNumber), received.Select(SequenceNumber));

            // The second drain ends too (delivery-count 4 + 5), after exactly those three deliveries, all made on the new credit.
            var done = await DrainedAsync(tap, handle, grant.Index);
            Assert.Equal(9u, ((Flow)done.Performative!).DeliveryCount);
            var transfers = Transfers(tap, handle);
            Assert.Equal(3, transfers.Count);
            Assert.All(transfers, t => Assert.InRange(t.Index, grant.Index + 1, done.Index - 1));
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    /// <summary>The first flow after frame <paramref name="after"/> in which the endpoint leaves the link no credit.</summary>
    private static Task<TappedFrame> DrainedAsync(AmqpFrameTap tap, uint handle, int after) =>
        tap.NextAsync(after, f => f.IsPeerFlow(handle) && ((Flow)f.Performative!).LinkCredit == 0, Guard);

    private static List<TappedFrame> Transfers(AmqpFrameTap tap, uint handle) => [.. tap.Frames.Where(f => f.IsPeerTransfer(handle))];

    private static string Body(Message message) => Encoding.UTF8.GetString((byte[])message.Body);

    private static long SequenceNumber(Message message) => (long)message.MessageAnnotations[new Symbol("x-opt-sequence-number")];

    /// <summary>Sends one event per body from <paramref name="device"/> (each acknowledged, so in its partition) and returns the bodies.</summary>
    private static async Task<string[]> PublishAsync(MqttTestDevice device, params string[] bodies)
    {
        foreach (var body in bodies)
        {
            await device.PublishAsync($"devices/{device.DeviceId}/messages/events/", body);
        }

        return bodies;
    }

    private static async Task<List<Message>> ReceiveAsync(ReceiverLink receiver, int count)
    {
        var messages = new List<Message>();
        for (var i = 0; i < count; i++)
        {
            var message = await receiver.ReceiveAsync(Guard);
            Assert.True(message is not null, $"Only {messages.Count} of {count} events came.");
            receiver.Accept(message);
            messages.Add(message);
        }

        return messages;
    }

    /// <summary>A TLS connection over a frame tap, SASL ANONYMOUS, with a service token for the entity on <c>$cbs</c>.</summary>
    private async Task<(AmqpFrameTap Tap, Connection Connection, Session Session)> ConnectAsync()
    {
        var tap = new AmqpFrameTap("localhost", Emulator.AmqpPort, (_, certificate, _, errors) => fixture.Trust.Validate(certificate, errors));
        var factory = tap.Factory();
        factory.SASL.Profile = SaslProfile.Anonymous;
        var connection = await factory.CreateAsync(new Address("localhost", Emulator.AmqpPort, null, null, "/", "amqps")).WaitAsync(Guard);
        var session = new Session(connection);
        var token = SasToken.CreateForTimeToLive(Emulator.HostName, Emulator.Hub.Policies["service"].PrimaryKey, TimeSpan.FromMinutes(10), "service");
        var cbs = new SenderLink(session, "cbs-sender", "$cbs");
        var replies = new ReceiverLink(session, "cbs-receiver", new Attach { Source = new Source { Address = "$cbs" }, Target = new Target { Address = "cbs-reply" } }, null);
        replies.SetCredit(1);
        var request = new Message(token) { Properties = new Properties { MessageId = "cbs-1", ReplyTo = "cbs-reply" }, ApplicationProperties = new ApplicationProperties() };
        request.ApplicationProperties["operation"] = "put-token";
        request.ApplicationProperties["type"] = "servicebus.windows.net:sastoken";
        request.ApplicationProperties["name"] = $"{Emulator.HostName}/{Emulator.Hub.EventHubName}";
        await cbs.SendAsync(request).WaitAsync(Guard);
        var response = await replies.ReceiveAsync(Guard);
        Assert.NotNull(response);
        replies.Accept(response);
        Assert.Equal(200, response.ApplicationProperties["status-code"]);
        await cbs.CloseAsync();
        await replies.CloseAsync();
        return (tap, connection, session);
    }

    /// <summary>A receiver on the device's partition that starts at the end (so it reads only what is sent from now on), once attached; no credit yet.</summary>
    private async Task<ReceiverLink> AttachAsync(Session session, string name, string deviceId, string group = "$Default")
    {
        var partition = Emulator.Hub.PartitionOf(deviceId);
        var latest = new Map { [new Symbol("apache.org:selector-filter:string")] = new DescribedValue(new Symbol("apache.org:selector-filter:string"), "amqp.annotation.x-opt-offset > '@latest'") };
        var attached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var receiver = new ReceiverLink(session, name, new Source { Address = $"{Emulator.Hub.EventHubName}/ConsumerGroups/{group}/Partitions/{partition}", FilterSet = latest },
            (_, _) => attached.TrySetResult());
        await attached.Task.WaitAsync(Guard);
        return receiver;
    }
}
