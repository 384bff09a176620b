using System.Globalization;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>Token renewal, reconnect after the hub goes away, and no lost QoS 1 message, against the emulator.</summary>
public sealed class DeviceClientReliabilityTests
{
    [Fact]
    public async Task FiveSecondTokens_ForAMinute_AreRenewedWithNoLostMessage()
    {
        // No clock skew allowance: the hub closes a connection the moment its token expires.
        await using var hub = EmulatorFixture.Start(o => o.TokenClockSkew = TimeSpan.Zero);
        var (id, key) = hub.CreateDevice();
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with
        {
            TokenTimeToLive = TimeSpan.FromSeconds(5), OperationTimeout = TimeSpan.FromSeconds(10),
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromSeconds(1), Log = log.Enqueue,
        });
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var sent = 0;
        var acknowledged = new List<Task<TelemetrySendResult>>();
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < until)
        {
            acknowledged.Add(await client.EnqueueTelemetryAsync(TelemetryMessage.FromText(sent++.ToString(CultureInfo.InvariantCulture)), TestContext.Current.CancellationToken));
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        await Task.WhenAll(acknowledged);
        Assert.True(client.TokenRenewalCount >= 10, $"renewed {client.TokenRenewalCount} times; log: {string.Join(" | ", log.TakeLast(10))}");
        var received = await HubProbe.TelemetryAsync(hub.Service, id, sent, TimeSpan.FromSeconds(30));
        var bodies = received.Select(HubProbe.Body).ToHashSet();
        var missing = Enumerable.Range(0, sent).Select(i => i.ToString(CultureInfo.InvariantCulture)).Where(b => !bodies.Contains(b)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} of {sent} messages never arrived, e.g. {string.Join(",", missing.Take(5))}");
        Assert.Equal(IoTHubConnectionState.Connected, client.State);
    }

    [Fact]
    public async Task HubStoppedAndRestarted_ClientReconnects_AndEveryAcceptedMessageArrives()
    {
        var dataPath = Path.Combine(Path.GetTempPath(), "iothubmqtt-restart-" + Guid.NewGuid().ToString("N"));
        var first = EmulatorFixture.Start(o => { o.Persist = true; o.DataPath = dataPath; });
        var ports = (first.Emulator.MqttTlsPort, first.Emulator.HttpsPort, first.Emulator.DpsPort);
        var (id, key) = first.CreateDevice();
        var states = new System.Collections.Concurrent.ConcurrentQueue<IoTHubConnectionState>();
        await using var client = HubProbe.NewClient(first.Emulator, id, key, o => o with
        {
            MaxInFlight = 8, OperationTimeout = TimeSpan.FromSeconds(5),
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(200), ReconnectMaxDelay = TimeSpan.FromSeconds(1),
        });
        client.StateChanged += states.Enqueue;
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        const int total = 600;
        var acknowledged = new List<Task<TelemetrySendResult>>();
        EmulatorFixture? second = null;
        try
        {
            for (var i = 0; i < total; i++)
            {
                acknowledged.Add(await client.EnqueueTelemetryAsync(TelemetryMessage.FromText(i.ToString(CultureInfo.InvariantCulture)), TestContext.Current.CancellationToken));
                if (i == 200)
                {
                    await first.DisposeAsync();
                    await Task.Delay(1500, TestContext.Current.CancellationToken);
                    second = EmulatorFixture.Start(o =>
                    {
                        o.Persist = true;
                        o.DataPath = dataPath;
                        o.MqttTlsPort = ports.MqttTlsPort;
                        o.HttpsPort = ports.HttpsPort;
                        o.DpsPort = ports.DpsPort;
                    });
                }
            }

            await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

            Assert.Contains(IoTHubConnectionState.Reconnecting, states);
            Assert.True(client.ReconnectCount >= 1);
            var received = await HubProbe.TelemetryAsync(second!.Service, id, total, TimeSpan.FromSeconds(30));
            var bodies = received.Select(HubProbe.Body).ToHashSet();
            var missing = Enumerable.Range(0, total).Where(i => !bodies.Contains(i.ToString(CultureInfo.InvariantCulture))).ToList();
            Assert.True(missing.Count == 0, $"{missing.Count} acknowledged messages are missing, e.g. {string.Join(",", missing.Take(5))}");
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

    [Fact]
    public async Task Disconnect_EndsPendingWaitsAndRejectsNewWork()
    {
        await using var hub = new EmulatorFixture();
        var (id, key) = hub.CreateDevice();
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var client = HubProbe.NewClient(hub.Emulator, id, key, log: log.Enqueue);
        try
        {
            await client.ConnectAsync(TestContext.Current.CancellationToken);
        }
        catch (Errors.IoTHubMqttException ex)
        {
            Assert.Fail($"{ex.ErrorId}: {ex.Message}\nclient: {string.Join(" | ", log)}\nemulator: {string.Join(" | ", hub.Log.TakeLast(20))}");
        }

        var waiting = client.ReceiveCloudToDeviceAsync(TimeSpan.FromMinutes(5), TestContext.Current.CancellationToken);

        await client.DisposeAsync();

        Assert.Null(await waiting.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.SendTelemetryAsync(TelemetryMessage.FromText("late"), TestContext.Current.CancellationToken));
    }
}
