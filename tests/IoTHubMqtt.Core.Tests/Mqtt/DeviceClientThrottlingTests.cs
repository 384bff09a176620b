using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>
/// The emulator throttling a device (its DeviceOperationsPerSecond fault): twin requests answered 429 are tried again
/// until they succeed; telemetry over the rate has its connection closed, after the hub acknowledged what it took, and
/// the client goes on at the hub's rate. The pauses themselves are tested on a fake clock in SessionTimingTests.
/// </summary>
public sealed class DeviceClientThrottlingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// A burst of 40 to a hub that takes 5 a second: each connection has the 5 the hub took acknowledged before the hub
    /// closes it, the client sends again only the rest, and the pause after a connection that made progress does not
    /// grow. Hub and client share one fake clock that moves only by the pauses the client announces, so the hub's bucket
    /// is full (5) at each connection: 8 connections carry the 40, each message is stored by the hub exactly once.
    /// </summary>
    [Theory]
    [InlineData(ClockKind.Fake)]
    [InlineData(ClockKind.Real)]
    public async Task TelemetryBurstOverTheRate_EachConnectionHasWhatTheHubTookAcknowledged_AndOnlyTheRestIsSentAgain(ClockKind kind)
    {
        var clock = TestClock.Of(kind);
        await using var hub = EmulatorFixture.Start(o =>
        {
            o.DeviceOperationsPerSecond = 5;
            o.TimeProvider = clock.Provider;
        });
        var (id, key) = hub.CreateDevice();
        var log = new TestLog();

        // A first pause of 1 to 2 s (jittered): long enough for the hub's bucket of 5 to refill whatever the jitter.
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with
        {
            TimeProvider = clock.Provider, OperationTimeout = TimeSpan.FromSeconds(30),
            ReconnectInitialDelay = TimeSpan.FromSeconds(2), ReconnectMaxDelay = TimeSpan.FromSeconds(60),
        }, log);
        await client.ConnectAsync(Ct);

        const int total = 40;
        const int rate = 5;
        var sends = new List<Task<TelemetrySendResult>>();
        for (var i = 0; i < total; i++)
        {
            sends.Add(await client.Telemetry.SendAsync(TelemetryMessage.FromText(i.ToString(CultureInfo.InvariantCulture)), Ct));
        }

        var settled = Task.WhenAll(sends).ContinueWith(t => _ = t.Exception, Ct, TaskContinuationOptions.None, TaskScheduler.Default); // done, whether or not all succeeded
        var pauses = await clock.DriveBackoffAsync(log, settled);
        var failed = sends.Where(s => !s.IsCompletedSuccessfully).Select(s => s.Exception?.InnerException?.Message ?? s.Status.ToString()).ToList();
        Assert.True(failed.Count == 0, $"{failed.Count} of {total} sends failed, e.g. {failed.FirstOrDefault()}; pauses {string.Join(", ", pauses.Select(p => p.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)))}");

        // Each message stored once: no acknowledgement the hub wrote was lost to the close, so nothing it took went again.
        var stored = await StoredBodiesAsync(hub, id);
        Assert.Equal(Enumerable.Range(0, total).Select(i => i.ToString(CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal), stored.Order(StringComparer.Ordinal));

        // Five a connection: the first carried 5, each of the 7 reconnects 5 more (fewer reconnects only if the clock was
        // nudged on while the client was quiet, which refills the bucket sooner).
        Assert.Contains(hub.Log, line => line.Contains("throttled", StringComparison.Ordinal));
        Assert.InRange(client.ReconnectCount, 1, (total / rate) - 1);

        // Every connection made progress, so no pause grew past the first step (1 to 2 s).
        Assert.All(pauses, p => Assert.InRange(p.TotalSeconds, 0.999, 2.001));
        Assert.All(sends, s => Assert.InRange(s.Result.Attempts, 1, total / rate));
    }
    [Fact]
    public async Task ThrottledTwinRequests_Answered429_AreRetriedUntilTheySucceed()
    {
        await using var hub = EmulatorFixture.Start(o => o.DeviceOperationsPerSecond = 2);
        var (id, key) = hub.CreateDevice();
        var log = new TestLog();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with { OperationTimeout = TimeSpan.FromSeconds(30) }, log);
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var patches = Enumerable.Range(0, 8).Select(i => client.UpdateReportedPropertiesAsync(new JsonObject { [$"p{i}"] = i }, TestContext.Current.CancellationToken)).ToList();
        var versions = await Task.WhenAll(patches).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        var twin = await client.GetTwinAsync(TestContext.Current.CancellationToken);

        Assert.Contains(log.Lines, line => line.Contains("answered 429", StringComparison.Ordinal));
        Assert.Equal(8, versions.Distinct().Count());
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(i, twin.Reported[$"p{i}"]!.GetValue<int>());
        }
    }

    private static async Task<List<string>> StoredBodiesAsync(EmulatorFixture hub, string id)
    {
        var response = await hub.Service.SendAsync(HttpMethod.Get, $"/$emulator/messages/events?deviceId={Uri.EscapeDataString(id)}&from=0&max=1000&timeout=0");
        Assert.Equal(HttpStatusCode.OK, response.Status);
        return [.. response.Json!["messages"]!.AsArray().Select(m => HubProbe.Body(m!.AsObject()))];
    }
}
