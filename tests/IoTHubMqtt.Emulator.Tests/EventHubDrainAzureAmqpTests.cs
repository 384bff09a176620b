using System.Collections.Concurrent;
using System.Text;
using IoTHubMqtt.Testing;
using Microsoft.Azure.Amqp;
using Microsoft.Azure.Amqp.Framing;
using Microsoft.Azure.Amqp.Sasl;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// Link drain on the Event Hub-compatible endpoint, as Microsoft.Azure.Amqp sees it — the AMQP library under the official
/// Azure SDKs (Azure.Messaging.EventHubs, the IoT Hub service SDK). Its receiver drains the credit it already holds:
/// <see cref="ReceivingAmqpLink.DrainAsyc"/> sends a flow with drain set and its link-credit unchanged (it grants nothing
/// new), and completes only when the sender answers with a flow that leaves the link no credit (AMQP 1.0 section 2.6.7:
/// "the sender MUST advance its delivery-count until link-credit is zero, and send its updated flow state to the
/// receiver"). Until then the task waits, up to the link's operation timeout.
/// <para>
/// What the client observes is that task, the messages handed to its listener, and <see cref="AmqpLink.LinkCredit"/>; it
/// keeps the delivery-count to itself (AMQP 1.0 section 2.6.7 checks of it are in <see cref="EventHubDrainTests"/>, over a
/// frame tap). Each test has an emulator of its own on a clock that does not move: the endpoint's wait for telemetry (its
/// long-poll, on the hub's clock) never ends by itself, so a drain answered only when that wait ran out is never answered
/// and the test fails at its guard instead of passing slowly.
/// </para>
/// </summary>
public sealed class EventHubDrainAzureAmqpTests : IAsyncLifetime
{
    /// <summary>Guards against a hang only: no test waits for it to pass.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private readonly EmulatorFixture fixture = EmulatorFixture.Start(options => options.TimeProvider = new FakeTimeProvider(DateTimeOffset.UtcNow));

    private IoTHubEmulator Emulator => fixture.Emulator;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await fixture.DisposeAsync();

    /// <summary>
    /// Two events wait in the partition; the receiver grants 5 and drains: it gets exactly the two, in order, and then the
    /// drain completes with its credit used up — the three credits left are not kept waiting for telemetry.
    /// </summary>
    [Fact]
    public async Task Drain_WithFewerEventsThanCredit_DeliversThem_ThenUsesUpTheCredit()
    {
        await WithReceiverAsync(async (device, link, received) =>
        {
            var sent = await PublishAsync(device, "a", "b");
            link.IssueCredit(5, false, AmqpConstants.NullBinary);
            await DrainAsync(link);

            // The flow that ended the drain came after the deliveries: by now the listener has had them all.
            Assert.Equal(sent, received.Select(Body));
            Assert.Equal(0u, link.LinkCredit);
        });
    }

    /// <summary>Nothing in the partition: the drain completes, with no event and no credit left.</summary>
    [Fact]
    public async Task Drain_WithNothingToRead_EndsWithNoEvent()
    {
        await WithReceiverAsync(async (device, link, received) =>
        {
            Assert.Equal(0, Emulator.Hub.Telemetry.DescribePartition(Emulator.Hub.PartitionOf(device.DeviceId)).LastSequenceNumber);
            link.IssueCredit(3, false, AmqpConstants.NullBinary);
            await DrainAsync(link);

            Assert.Empty(received);
            Assert.Equal(0u, link.LinkCredit);
        });
    }

    /// <summary>
    /// The receiver holds credit, has had the one event there was, and the endpoint now waits for more telemetry on the
    /// credit left; the receiver drains that credit. The drain completes at once — on this clock the wait never runs out,
    /// so the answer cannot be the wait ending — with no further event and no credit left.
    /// </summary>
    [Fact]
    public async Task Drain_OfCreditGrantedBefore_WhileTheEndpointWaitsForTelemetry_EndsAtOnce()
    {
        await WithReceiverAsync(async (device, link, received) =>
        {
            link.IssueCredit(5, false, AmqpConstants.NullBinary);
            var sent = await PublishAsync(device, "one");
            await received.CountReachesAsync(1);
            Assert.Equal(4u, link.LinkCredit); // 4 credits left; the endpoint waits for more

            await DrainAsync(link);
            Assert.Equal(sent, received.Select(Body));
            Assert.Equal(0u, link.LinkCredit);
        });
    }

    /// <summary>
    /// A receiver that holds no credit and drains (as a client drains after each receive, whatever credit is left): the
    /// endpoint answers with its flow state at once, link-credit 0, so the drain completes rather than waiting out the
    /// client's operation timeout.
    /// </summary>
    [Fact]
    public async Task Drain_WithNoCreditHeld_EndsAtOnce()
    {
        await WithReceiverAsync(async (device, link, received) =>
        {
            await PublishAsync(device, "kept");
            Assert.Equal(0u, link.LinkCredit);

            await DrainAsync(link);
            Assert.Empty(received);
            Assert.Equal(0u, link.LinkCredit);
        });
    }

    /// <summary>
    /// Runs <paramref name="test"/> with a device of its own and a receiver attached on its partition (no credit yet), over
    /// a connection closed afterwards.
    /// </summary>
    private async Task WithReceiverAsync(Func<MqttTestDevice, ReceivingAmqpLink, Received, Task> test)
    {
        await using var device = await fixture.ConnectNewDeviceAsync("drain");
        var connection = await ConnectAsync();
        try
        {
            var (link, received) = await AttachAsync(connection, device.DeviceId);
            await test(device, link, received);
        }
        finally
        {
            await connection.CloseAsync(Guard);
        }
    }

    /// <summary>Drains <paramref name="link"/>; fails the test when the drain has not completed within the guard.</summary>
    private static async Task DrainAsync(ReceivingAmqpLink link)
    {
        using var guard = new CancellationTokenSource(Guard);
        try
        {
            await link.DrainAsyc(guard.Token);
        }
        catch (OperationCanceledException) when (guard.IsCancellationRequested)
        {
            Assert.Fail($"The drain was not answered within {Guard.TotalSeconds} s.");
        }
    }

    private static string Body(AmqpMessage message) =>
        string.Concat(message.DataBody.Select(data => Encoding.UTF8.GetString(((ArraySegment<byte>)data.Value).AsSpan())));

    /// <summary>Sends one event per body from <paramref name="device"/> (each acknowledged, so in its partition) and returns the bodies.</summary>
    private static async Task<string[]> PublishAsync(MqttTestDevice device, params string[] bodies)
    {
        foreach (var body in bodies)
        {
            await device.PublishAsync($"devices/{device.DeviceId}/messages/events/", body);
        }

        return bodies;
    }

    /// <summary>A TLS connection (trusting the emulator's CA), SASL ANONYMOUS, with an Event Hubs token for the entity put on <c>$cbs</c>.</summary>
    private async Task<AmqpConnection> ConnectAsync()
    {
        var factory = new AmqpConnectionFactory();
        factory.TlsSettings.CertificateValidationCallback = (_, certificate, _, errors) => fixture.Trust.Validate(certificate, errors);
        using var cancel = new CancellationTokenSource(Guard);
        var connection = await factory.OpenConnectionAsync(new Uri($"amqps://localhost:{Emulator.AmqpPort}"), new SaslAnonymousHandler(), cancel.Token);
        var audience = $"sb://{Emulator.HostName}/{Emulator.Hub.EventHubName}";
        var cbs = new AmqpCbsLink(connection);
        await cbs.SendTokenAsync(new TokenProvider(Emulator.Hub.Policies["service"].PrimaryKey), new Uri($"sb://{Emulator.HostName}/"), audience, audience, ["Listen"], Guard);
        return connection;
    }

    /// <summary>
    /// A receiver on the device's partition, from its start, once attached: no credit until the test grants it, none restored
    /// by itself (flow is the test's alone), settled on send as the Event Hubs client receives. Every message it is handed
    /// goes to the list returned.
    /// </summary>
    private async Task<(ReceivingAmqpLink Link, Received Messages)> AttachAsync(AmqpConnection connection, string deviceId)
    {
        var session = connection.CreateSession(new AmqpSessionSettings());
        await session.OpenAsync(Guard);
        var partition = Emulator.Hub.PartitionOf(deviceId);
        var settings = new AmqpLinkSettings
        {
            LinkName = "drain-" + Guid.NewGuid().ToString("N")[..8],
            Role = true,
            Source = new Source { Address = $"{Emulator.Hub.EventHubName}/ConsumerGroups/$Default/Partitions/{partition}" },
            Target = new Target { Address = "drain-receiver" },
            TotalLinkCredit = 0,
            AutoSendFlow = false,
            SettleType = SettleMode.SettleOnSend,
        };
        var link = new ReceivingAmqpLink(settings);
        var received = new Received();
        link.RegisterMessageListener(received.Add);
        link.AttachTo(session);
        await link.OpenAsync(Guard);
        return (link, received);
    }

    /// <summary>The messages a receiver was handed, in order; a test can wait for a count of them.</summary>
    private sealed class Received : IEnumerable<AmqpMessage>
    {
        private readonly ConcurrentQueue<AmqpMessage> messages = new();
        private readonly SemaphoreSlim arrived = new(0);

        public void Add(AmqpMessage message)
        {
            messages.Enqueue(message);
            arrived.Release();
        }

        public async Task CountReachesAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                Assert.True(await arrived.WaitAsync(Guard), $"Only {i} of {count} events came.");
            }
        }

        public IEnumerator<AmqpMessage> GetEnumerator() => messages.GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>Event Hubs tokens (the rule the emulator's Event Hub-compatible endpoint takes) for the service policy.</summary>
    private sealed class TokenProvider(string key) : ICbsTokenProvider
    {
        public Task<CbsToken> GetTokenAsync(Uri namespaceAddress, string appliesTo, string[] requiredClaims)
        {
            var expiry = DateTimeOffset.UtcNow.AddMinutes(10);
            return Task.FromResult(new CbsToken(EventHubsSas.Create(appliesTo, key, expiry, "service"), "servicebus.windows.net:sastoken", expiry.UtcDateTime));
        }
    }
}
