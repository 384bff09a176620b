using Amqp;
using Amqp.Framing;
using Amqp.Sasl;
using Amqp.Types;
using Azure.Messaging.EventHubs;
using Azure.Messaging.EventHubs.Consumer;
using Azure.Messaging.EventHubs.Primitives;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// The built-in endpoint as the official .NET Event Hubs client (Azure.Messaging.EventHubs) sees it: the emulator's
/// Event Hub-compatible connection string, with the emulator's port as the custom endpoint address (the .NET client
/// drops a port from the connection string) and its CA through the certificate validation callback. Each test has an
/// emulator of its own.
/// </summary>
public sealed class EventHubsDotnetClientTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly EmulatorFixture fixture = new();

    private IoTHubEmulator Emulator => fixture.Emulator;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await fixture.DisposeAsync();

    private EventHubConnectionOptions ConnectionOptions => new()
    {
        CustomEndpointAddress = new Uri($"amqps://{Emulator.HostName}:{Emulator.AmqpPort}"),
        CertificateValidationCallback = (_, certificate, _, errors) => fixture.Trust.Validate(certificate, errors),
    };

    private EventHubConsumerClient Consumer(string group = EventHubConsumerClient.DefaultConsumerGroupName) =>
        new(group, Emulator.EventHubConnectionString!, new EventHubConsumerClientOptions { ConnectionOptions = ConnectionOptions });

    private PartitionReceiver Receiver(int partition, EventPosition position, string group = EventHubConsumerClient.DefaultConsumerGroupName, long? ownerLevel = null) =>
        new(group, partition.ToString(System.Globalization.CultureInfo.InvariantCulture), position, Emulator.EventHubConnectionString!,
            new PartitionReceiverOptions { ConnectionOptions = ConnectionOptions, OwnerLevel = ownerLevel, DefaultMaximumReceiveWaitTime = TimeSpan.FromSeconds(1) });

    private async Task<(MqttTestDevice Device, int Partition)> SendAsync(int count, string prefix = "eh")
    {
        var device = await fixture.ConnectNewDeviceAsync(prefix);
        for (var i = 1; i <= count; i++)
        {
            await device.PublishAsync($"devices/{device.DeviceId}/messages/events/n={i}", $"{{\"n\":{i}}}");
        }

        return (device, Emulator.Hub.PartitionOf(device.DeviceId));
    }

    /// <summary>Receives until <paramref name="count"/> events came, then once more to see that nothing else does.</summary>
    private static async Task<List<EventData>> ReceiveExactlyAsync(PartitionReceiver receiver, int count)
    {
        var events = new List<EventData>();
        var deadline = DateTime.UtcNow + Wait;
        while (events.Count < count && DateTime.UtcNow < deadline)
        {
            events.AddRange(await receiver.ReceiveBatchAsync(count - events.Count, TimeSpan.FromSeconds(1)));
        }

        events.AddRange(await receiver.ReceiveBatchAsync(10, TimeSpan.FromMilliseconds(300)));
        return events;
    }

    private async Task<List<long>> ReadAsync(int partition, EventPosition position, int count, string group = EventHubConsumerClient.DefaultConsumerGroupName)
    {
        await using var receiver = Receiver(partition, position, group);
        return (await ReceiveExactlyAsync(receiver, count)).Select(e => e.SequenceNumber).ToList();
    }

    [Fact]
    public async Task Properties_OfTheEntityAndPartitions_AreThoseOfTheTelemetryHeld()
    {
        var (device, partition) = await SendAsync(3);
        await using var _ = device;
        await using var consumer = Consumer();

        var hub = await consumer.GetEventHubPropertiesAsync();
        var properties = await consumer.GetPartitionPropertiesAsync(partition.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var empty = await consumer.GetPartitionPropertiesAsync(((partition + 1) % 4).ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(Emulator.EventHubName, hub.Name);
        Assert.Equal(["0", "1", "2", "3"], hub.PartitionIds);
        Assert.False(properties.IsEmpty);
        Assert.Equal(1, properties.BeginningSequenceNumber);
        Assert.Equal(3, properties.LastEnqueuedSequenceNumber);
        var last = (await ReceiveExactlyAsync(Receiver(partition, EventPosition.FromSequenceNumber(3, isInclusive: true)), 1)).Single();
        Assert.Equal(last.OffsetString, properties.LastEnqueuedOffsetString);
        Assert.Equal(last.EnqueuedTime, properties.LastEnqueuedTime);
        Assert.True(empty.IsEmpty);
        Assert.Equal(empty.BeginningSequenceNumber - 1, empty.LastEnqueuedSequenceNumber);
    }

    [Fact]
    public async Task Read_FromEachKindOfPosition_GetsEachEventExactlyOnce()
    {
        var (device, partition) = await SendAsync(5);
        await using var _ = device;
        await using var all = Receiver(partition, EventPosition.Earliest);
        var events = await ReceiveExactlyAsync(all, 5);

        Assert.Equal([1L, 2, 3, 4, 5], events.Select(e => e.SequenceNumber));
        Assert.Equal("{\"n\":1}", events[0].EventBody.ToString());
        Assert.Equal([3L, 4, 5], await ReadAsync(partition, EventPosition.FromSequenceNumber(2, isInclusive: false), 3));
        Assert.Equal([2L, 3, 4, 5], await ReadAsync(partition, EventPosition.FromSequenceNumber(2, isInclusive: true), 4));
        Assert.Equal([4L, 5], await ReadAsync(partition, EventPosition.FromOffset(events[2].OffsetString, isInclusive: false), 2));
        Assert.Equal([3L, 4, 5], await ReadAsync(partition, EventPosition.FromOffset(events[2].OffsetString, isInclusive: true), 3));
        var after = events.Where(e => e.EnqueuedTime > events[2].EnqueuedTime).Select(e => e.SequenceNumber).ToList();
        Assert.Equal(after, await ReadAsync(partition, EventPosition.FromEnqueuedTime(events[2].EnqueuedTime), after.Count));
        Assert.Equal([1L, 2, 3, 4, 5], await ReadAsync(partition, EventPosition.FromEnqueuedTime(events[0].EnqueuedTime.AddMilliseconds(-1)), 5));
    }

    [Fact]
    public async Task Read_FromLatest_GetsOnlyWhatIsEnqueuedAfterTheReceiverAttached()
    {
        var (device, partition) = await SendAsync(2);
        await using var _ = device;
        await using var receiver = Receiver(partition, EventPosition.Latest);
        Assert.Empty(await receiver.ReceiveBatchAsync(10, TimeSpan.FromMilliseconds(500))); // attaches the link

        await device.PublishAsync($"devices/{device.DeviceId}/messages/events/", "after");

        var only = Assert.Single(await ReceiveExactlyAsync(receiver, 1));
        Assert.Equal("after", only.EventBody.ToString());
        Assert.Equal(3, only.SequenceNumber);
    }

    [Fact]
    public async Task Events_CarryTheHubsSystemProperties()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("props");
        await device.PublishAsync($"devices/{device.DeviceId}/messages/events/%24.mid=m-1&%24.cid=c-1&%24.ct=application%2Fjson&color=red", "{}");

        var e = Assert.Single(await ReceiveExactlyAsync(Receiver(Emulator.Hub.PartitionOf(device.DeviceId), EventPosition.Earliest), 1));

        Assert.Equal("red", e.Properties["color"]);
        Assert.Equal("m-1", e.MessageId);
        Assert.Equal("c-1", e.CorrelationId);
        Assert.Equal("application/json", e.ContentType);
        Assert.Equal(device.DeviceId, e.SystemProperties["iothub-connection-device-id"]);
        Assert.Equal(Emulator.Hub.FindDevice(device.DeviceId)!.GenerationId, e.SystemProperties["iothub-connection-auth-generation-id"]);
        Assert.Contains("\"type\":\"sas\"", (string)e.SystemProperties["iothub-connection-auth-method"], StringComparison.Ordinal);
        Assert.Equal(e.EnqueuedTime.UtcDateTime, ((DateTime)e.SystemProperties["iothub-enqueuedtime"]).ToUniversalTime());
        Assert.Equal("Telemetry", e.SystemProperties["iothub-message-source"]);
    }

    [Fact]
    public async Task OwnerLevel_AHigherOneTakesThePartition_ALowerOneAndOneWithoutAreRefused()
    {
        var (device, partition) = await SendAsync(1);
        await using var _ = device;
        await using var first = Receiver(partition, EventPosition.Earliest, ownerLevel: 1);
        Assert.Single(await ReceiveExactlyAsync(first, 1));

        await using var second = Receiver(partition, EventPosition.Earliest, ownerLevel: 2);
        Assert.Single(await ReceiveExactlyAsync(second, 1));
        var stolen = await Assert.ThrowsAsync<EventHubsException>(() => ReceiveExactlyAsync(first, 1));
        Assert.Equal(EventHubsException.FailureReason.ConsumerDisconnected, stolen.Reason);

        await using var lower = Receiver(partition, EventPosition.Earliest, ownerLevel: 1);
        Assert.Equal(EventHubsException.FailureReason.ConsumerDisconnected, (await Assert.ThrowsAsync<EventHubsException>(() => ReceiveExactlyAsync(lower, 1))).Reason);
        await using var plain = Receiver(partition, EventPosition.Earliest);
        Assert.Equal(EventHubsException.FailureReason.ConsumerDisconnected, (await Assert.ThrowsAsync<EventHubsException>(() => ReceiveExactlyAsync(plain, 1))).Reason);

        // Another consumer group has positions and owners of its own.
        Assert.Equal([1L], await ReadAsync(partition, EventPosition.Earliest, 1, "analytics"));
    }

    [Fact]
    public async Task ReadersWithoutOwnerLevel_AtMostFivePerPartitionAndGroup()
    {
        var (device, partition) = await SendAsync(1);
        await using var _ = device;
        var readers = new List<PartitionReceiver>();
        try
        {
            for (var i = 0; i < Service.AmqpEndpoint.MaxReadersPerPartition; i++)
            {
                readers.Add(Receiver(partition, EventPosition.Earliest));
                Assert.Single(await ReceiveExactlyAsync(readers[^1], 1));
            }

            var sixth = Receiver(partition, EventPosition.Earliest);
            readers.Add(sixth);
            var refused = await Assert.ThrowsAsync<EventHubsException>(() => ReceiveExactlyAsync(sixth, 1));
            Assert.Equal(EventHubsException.FailureReason.QuotaExceeded, refused.Reason);
        }
        finally
        {
            foreach (var reader in readers)
            {
                await reader.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Cbs_ATokenForTheEntitySignedByTheIoTHubRule_IsRefused_TheEventHubsRuleIsTaken()
    {
        var factory = new ConnectionFactory();
        factory.SSL.RemoteCertificateValidationCallback = (_, cert, _, errors) => fixture.Trust.Validate(cert, errors);
        factory.SASL.Profile = SaslProfile.Anonymous;
        var connection = await factory.CreateAsync(new Address(Emulator.HostName, Emulator.AmqpPort, null, null, "/", "amqps"));
        try
        {
            var session = new Session(connection);
            var policy = Emulator.Hub.Policies["service"];
            var audience = $"sb://{Emulator.HostName}/{Emulator.EventHubName}";
            var expiry = DateTimeOffset.UtcNow.AddMinutes(10);
            var ioTHubRule = SasToken.Create(audience, policy.PrimaryKey, expiry, "service");
            Assert.Equal(401, await PutTokenAsync(session, audience, ioTHubRule));

            var eventHubsRule = EventHubsSas.Create(audience, policy.PrimaryKey, expiry, "service");
            Assert.Equal(200, await PutTokenAsync(session, audience, eventHubsRule));
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    private static async Task<int> PutTokenAsync(Session session, string audience, string token)
    {
        var sender = new SenderLink(session, "cbs-sender-" + Guid.NewGuid().ToString("N")[..6], "$cbs");
        var receiver = new ReceiverLink(session, "cbs-receiver-" + Guid.NewGuid().ToString("N")[..6], new Attach { Source = new Source { Address = "$cbs" }, Target = new Target { Address = "cbs-reply" } }, null);
        receiver.SetCredit(5);
        try
        {
            var request = new Message(token) { Properties = new Properties { MessageId = "cbs-1", ReplyTo = "cbs-reply" }, ApplicationProperties = new ApplicationProperties() };
            request.ApplicationProperties["operation"] = "put-token";
            request.ApplicationProperties["type"] = "servicebus.windows.net:sastoken";
            request.ApplicationProperties["name"] = audience;
            await sender.SendAsync(request).WaitAsync(Wait);
            var response = await receiver.ReceiveAsync(Wait);
            receiver.Accept(response);
            return (int)response.ApplicationProperties["status-code"];
        }
        finally
        {
            await sender.CloseAsync();
            await receiver.CloseAsync();
        }
    }
}
