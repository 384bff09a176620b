using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>A hub that throttles the device (the emulator's DeviceOperationsPerSecond fault): the client backs off and loses nothing.</summary>
public sealed class DeviceClientThrottlingTests
{
    [Fact]
    public async Task ThrottledTelemetry_ConnectionClosedByTheHub_BacksOffAndEveryAcceptedMessageArrives()
    {
        await using var hub = EmulatorFixture.Start(o => o.DeviceOperationsPerSecond = 25);
        var (id, key) = hub.CreateDevice();
        var log = new ConcurrentQueue<string>();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with
        {
            MaxInFlight = 16, ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromSeconds(1), Log = log.Enqueue,
        });
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        const int total = 150;
        var acknowledged = new List<Task<TelemetrySendResult>>();
        for (var i = 0; i < total; i++)
        {
            acknowledged.Add(await client.EnqueueTelemetryAsync(TelemetryMessage.FromText(i.ToString(CultureInfo.InvariantCulture)), TestContext.Current.CancellationToken));
        }

        try
        {
            await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(90), TestContext.Current.CancellationToken);
        }
        catch (Exception ex)
        {
            Assert.Fail($"{ex}\nclient: {string.Join(" | ", log.TakeLast(15))}");
        }

        Assert.Contains(hub.Log, line => line.Contains("throttled", StringComparison.Ordinal));
        Assert.True(client.ReconnectCount >= 1, "the hub never closed the connection: the fault did not apply");
        Assert.Contains(log, line => line.Contains("soon after it was made", StringComparison.Ordinal));
        var received = await HubProbe.TelemetryAsync(hub.Service, id, total, TimeSpan.FromSeconds(20));
        var bodies = received.Select(HubProbe.Body).ToHashSet();
        var missing = Enumerable.Range(0, total).Where(i => !bodies.Contains(i.ToString(CultureInfo.InvariantCulture))).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} acknowledged messages are missing, e.g. {string.Join(",", missing.Take(5))}");
        Assert.Equal(IoTHubConnectionState.Connected, client.State);
    }

    [Fact]
    public async Task ThrottledTwinRequests_Answered429_AreRetriedUntilTheySucceed()
    {
        await using var hub = EmulatorFixture.Start(o => o.DeviceOperationsPerSecond = 2);
        var (id, key) = hub.CreateDevice();
        var log = new ConcurrentQueue<string>();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with { OperationTimeout = TimeSpan.FromSeconds(30), Log = log.Enqueue });
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var patches = Enumerable.Range(0, 8).Select(i => client.UpdateReportedPropertiesAsync(new JsonObject { [$"p{i}"] = i }, TestContext.Current.CancellationToken)).ToList();
        var versions = await Task.WhenAll(patches).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        var twin = await client.GetTwinAsync(TestContext.Current.CancellationToken);

        Assert.Contains(log, line => line.Contains("answered 429", StringComparison.Ordinal));
        Assert.Equal(8, versions.Distinct().Count());
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(i, twin.Reported[$"p{i}"]!.GetValue<int>());
        }
    }
}
