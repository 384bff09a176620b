using System.Globalization;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>
/// No acknowledged QoS 1 message is lost across token renewal, a hub restart or a throttling hub, against the
/// emulator. Each test runs on a fake clock it drives and once more on the real clock.
/// </summary>
public sealed class DeviceClientReliabilityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(ClockKind.Fake)]
    [InlineData(ClockKind.Real)]
    public async Task TokenRenewal_WhileTelemetryFlows_RenewsTwice_AndNoMessageIsLost(ClockKind kind)
    {
        var clock = TestClock.Of(kind);
        await using var hub = EmulatorFixture.Start(o => o.TokenClockSkew = TimeSpan.Zero);
        var (id, key) = hub.CreateDevice();
        var log = new TestLog();

        // Fake clock: hour-long tokens renewed at 85 %, as by default. Real clock: four-second tokens renewed at half
        // their lifetime, so two renewals take about four seconds and a busy machine still renews before expiry.
        var ttl = clock.IsFake ? TimeSpan.FromHours(1) : TimeSpan.FromSeconds(4);
        var fraction = clock.IsFake ? 0.85 : 0.5;
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with
        {
            TokenTimeToLive = ttl, TokenRenewalFraction = fraction, TimeProvider = clock.Provider,
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromSeconds(1),
        }, log);
        await client.ConnectAsync(Ct);
        var firstExpiry = client.TokenExpiresAt!.Value;

        var sent = 0;
        var acknowledged = new List<Task<TelemetrySendResult>>();
        async Task SendAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                acknowledged.Add(await client.Telemetry.SendAsync(TelemetryMessage.FromText(sent++.ToString(CultureInfo.InvariantCulture)), Ct));
            }
        }

        for (var renewal = 1; renewal <= 2; renewal++)
        {
            // Everything sent is acknowledged before the fake clock jumps: a jump with acknowledgements due would be
            // a hub silent for the whole jump, and the client would rightly reconnect.
            await SendAsync(50);
            await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(60), Ct);
            var from = log.Count;
            var renewing = log.WaitForAsync("Renewing the SAS token", from);
            clock.Advance(ttl * fraction + TimeSpan.FromSeconds(1));
            await renewing;
            await SendAsync(50); // while the connection is renewed: they wait in the outbox
            await clock.DriveBackoffAsync(log, log.WaitForAsync("Connected;", from), from);
        }

        await SendAsync(50);
        await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(60), Ct);

        if (clock.IsFake)
        {
            Assert.Equal(2, client.TokenRenewalCount);
        }
        else
        {
            Assert.True(client.TokenRenewalCount >= 2, $"renewed {client.TokenRenewalCount} times");
        }

        Assert.True(client.TokenExpiresAt > firstExpiry);
        Assert.Equal(IoTHubConnectionState.Connected, client.State);
        await AssertAllArrivedAsync(hub, id, sent);
    }

    [Theory]
    [InlineData(ClockKind.Fake)]
    [InlineData(ClockKind.Real)]
    public async Task HubStoppedAndRestarted_ClientReconnects_AndEveryAcceptedMessageArrives(ClockKind kind)
    {
        var clock = TestClock.Of(kind);
        var dataPath = Path.Combine(Path.GetTempPath(), "iothubmqtt-restart-" + Guid.NewGuid().ToString("N"));
        var first = EmulatorFixture.Start(o => { o.Persist = true; o.DataPath = dataPath; });
        var ports = (first.Emulator.MqttTlsPort, first.Emulator.HttpsPort, first.Emulator.DpsPort);
        var (id, key) = first.CreateDevice();
        var log = new TestLog();
        await using var client = HubProbe.NewClient(first.Emulator, id, key, o => o with
        {
            MaxInFlight = 8, OperationTimeout = TimeSpan.FromSeconds(30), TimeProvider = clock.Provider,
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1),
        }, log);
        var states = new System.Collections.Concurrent.ConcurrentQueue<IoTHubConnectionState>();
        client.StateChanged += states.Enqueue;
        await client.ConnectAsync(Ct);

        const int total = 600;
        var acknowledged = new List<Task<TelemetrySendResult>>();
        EmulatorFixture? second = null;
        try
        {
            for (var i = 0; i < 200; i++)
            {
                acknowledged.Add(await client.Telemetry.SendAsync(TelemetryMessage.FromText(i.ToString(CultureInfo.InvariantCulture)), Ct));
            }

            var from = log.Count;
            await first.DisposeAsync();
            await log.WaitForAsync("Connection lost", from);
            second = EmulatorFixture.Start(o =>
            {
                o.Persist = true;
                o.DataPath = dataPath;
                o.MqttTlsPort = ports.MqttTlsPort;
                o.HttpsPort = ports.HttpsPort;
                o.DpsPort = ports.DpsPort;
            });
            await clock.DriveBackoffAsync(log, log.WaitForAsync("Connected;", from), from);

            for (var i = 200; i < total; i++)
            {
                acknowledged.Add(await client.Telemetry.SendAsync(TelemetryMessage.FromText(i.ToString(CultureInfo.InvariantCulture)), Ct));
            }

            await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(60), Ct);
            Assert.Contains(IoTHubConnectionState.Reconnecting, states);
            Assert.True(client.ReconnectCount >= 1);
            await AssertAllArrivedAsync(second, id, total);
        }
        finally
        {
            if (second is not null)
            {
                await second.DisposeAsync();
            }

            try
            {
                Directory.Delete(dataPath, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    // On the real clock: the hub's rate and the client's pauses on the machine's time. On a fake clock shared by hub and
    // client: DeviceClientThrottlingTests.TelemetryBurstOverTheRate_…, and against the scripted hub TelemetryOutboxTests.HubCloses….
    [Theory]
    [InlineData(ClockKind.Real)]
    public async Task ThrottlingHubClosesTheConnection_ClientBacksOff_AndEveryAcceptedMessageArrives(ClockKind kind)
    {
        var clock = TestClock.Of(kind);
        await using var hub = EmulatorFixture.Start(o => o.DeviceOperationsPerSecond = 25);
        var (id, key) = hub.CreateDevice();
        var log = new TestLog();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with
        {
            MaxInFlight = 16, TimeProvider = clock.Provider,
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromSeconds(1),
        }, log);
        await client.ConnectAsync(Ct);

        const int total = 150;
        var sending = Task.Run(async () =>
        {
            var acknowledged = new List<Task<TelemetrySendResult>>();
            for (var i = 0; i < total; i++)
            {
                acknowledged.Add(await client.Telemetry.SendAsync(TelemetryMessage.FromText(i.ToString(CultureInfo.InvariantCulture)), Ct));
            }

            return await Task.WhenAll(acknowledged);
        }, Ct);
        await clock.DriveBackoffAsync(log, sending);

        Assert.Equal(total, (await sending).Length);
        Assert.Contains(hub.Log, line => line.Contains("throttled", StringComparison.Ordinal));
        Assert.True(client.ReconnectCount >= 1, "the hub never closed the connection: the fault did not apply");
        Assert.Contains(log.Lines, line => line.Contains("soon after it was made", StringComparison.Ordinal));
        Assert.Equal(IoTHubConnectionState.Connected, client.State);
        await AssertAllArrivedAsync(hub, id, total);
    }

    [Fact]
    public async Task Dispose_EndsPendingWaitsAndRejectsNewWork()
    {
        await using var hub = new EmulatorFixture();
        var (id, key) = hub.CreateDevice();
        var client = HubProbe.NewClient(hub.Emulator, id, key);
        await client.ConnectAsync(Ct);
        var waiting = client.ReceiveCloudToDeviceAsync(TimeSpan.FromMinutes(5), Ct);

        await client.DisposeAsync();

        Assert.Null(await waiting.WaitAsync(TimeSpan.FromSeconds(5), Ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.SendTelemetryAsync(TelemetryMessage.FromText("late"), Ct));
    }

    private static async Task AssertAllArrivedAsync(EmulatorFixture hub, string id, int count)
    {
        var received = await HubProbe.TelemetryAsync(hub.Service, id, count, TimeSpan.FromSeconds(30));
        var bodies = received.Select(HubProbe.Body).ToHashSet();
        var missing = Enumerable.Range(0, count).Where(i => !bodies.Contains(i.ToString(CultureInfo.InvariantCulture))).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} of {count} acknowledged messages never arrived, e.g. {string.Join(",", missing.Take(5))}");
    }
}
