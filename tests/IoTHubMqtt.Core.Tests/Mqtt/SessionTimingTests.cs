using System.Net;
using System.Net.Sockets;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>
/// Renewal, backoff, throttled and timed-out requests on a fake clock, against the scripted hub: each test moves time
/// on itself and waits only for what the client does in answer.
/// </summary>
public sealed class SessionTimingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TokenRenewal_AtTheRenewalFraction_ReconnectsWithATokenForAFullLifetime()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub();
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log, o => o with { TokenTimeToLive = TimeSpan.FromHours(1), TokenRenewalFraction = 0.85 });
        await client.ConnectAsync(Ct);
        var connectedAt = clock.Provider.GetUtcNow();
        Assert.Equal(connectedAt + TimeSpan.FromHours(1), client.TokenExpiresAt);

        clock.Advance(TimeSpan.FromMinutes(50));
        Assert.Equal(1, hub.ConnectCount);
        Assert.Equal(0, client.TokenRenewalCount);

        var from = log.Count;
        var renewed = hub.NextConnectionAsync();
        clock.Advance(TimeSpan.FromMinutes(1.5)); // 51.5 min: past 85 % of the hour
        await renewed.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await log.WaitForAsync("Connected;", from);

        Assert.Equal(1, client.TokenRenewalCount);
        Assert.Equal(IoTHubConnectionState.Connected, client.State);
        Assert.Equal(clock.Provider.GetUtcNow() + TimeSpan.FromHours(1), client.TokenExpiresAt);
        Assert.Contains(log.Lines.Skip(from), line => line.Contains("Renewing the SAS token", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TokenRenewal_WithMessagesInFlight_WaitsForTheirAcknowledgements_SoNothingIsSentTwice()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { HoldAcknowledgements = true };
        var log = new TestLog();
        // An hour's operation timeout: acknowledgements held for minutes are not taken for a hub that stopped answering.
        await using var client = ScriptedHubClient.Create(hub, clock, log, o => o with { TokenTimeToLive = TimeSpan.FromMinutes(10), OperationTimeout = TimeSpan.FromHours(1) });
        await client.ConnectAsync(Ct);
        var acknowledged = new List<Task<TelemetrySendResult>>();
        for (var i = 0; i < 3; i++)
        {
            acknowledged.Add(await client.Telemetry.SendAsync(ScriptedHubClient.Message(i), Ct));
        }

        await hub.WaitForPublishesAsync(p => p.Count >= 3);
        var from = log.Count;
        clock.Advance(TimeSpan.FromMinutes(9)); // past 85 %
        await log.WaitForAsync("Renewing the SAS token", from);
        var during = await client.Telemetry.SendAsync(ScriptedHubClient.Message(3), Ct);
        Assert.Equal(1, hub.ConnectCount);

        var renewed = hub.NextConnectionAsync();
        hub.HoldAcknowledgements = false;
        await renewed.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await Task.WhenAll(acknowledged.Append(during)).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(["0", "1", "2", "3"], hub.TelemetryBodies);
        Assert.All(acknowledged.Append(during), a => Assert.Equal(1, a.Result.Attempts));
        Assert.Equal(2, hub.Publishes.Single(p => p.Body == "3").Connection);
    }

    [Fact]
    public async Task HubUnreachable_ReconnectPausesDoubleUpToTheCap_WithJitter()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub();
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log, o => o with
        {
            ReconnectInitialDelay = TimeSpan.FromSeconds(1), ReconnectMaxDelay = TimeSpan.FromSeconds(30),
        });
        await client.ConnectAsync(Ct);

        // A connection that lasted (a minute here) ends: the first attempt comes at once, then pauses grow.
        clock.Advance(TimeSpan.FromMinutes(1));
        hub.RefuseConnections = 3;
        var from = log.Count;
        hub.DropConnections();
        var pauses = new List<TimeSpan>();
        for (var n = 0; n < 8; n++)
        {
            var (index, line) = await log.WaitForAsync("next attempt in", from);
            from = index + 1;
            pauses.Add(TestClock.Pause(line));
            Assert.Equal(IoTHubConnectionState.Reconnecting, client.State);
            clock.Advance(pauses[^1] + TimeSpan.FromMilliseconds(1));
        }

        for (var n = 0; n < pauses.Count; n++)
        {
            var ceiling = Math.Min(30, Math.Pow(2, n));
            Assert.InRange(pauses[n].TotalSeconds, ceiling / 2, ceiling);
        }

        var back = hub.NextConnectionAsync();
        hub.RefuseConnections = null;
        await clock.DriveBackoffAsync(log, back, from);
        await log.WaitForAsync("Connected;", from);
        Assert.Equal(IoTHubConnectionState.Connected, client.State);
    }

    [Fact]
    public async Task Connect_HubAcceptsTheSocketButNeverAnswers_ConnectTimedOutAtTheOperationTimeout()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        await using var hub = new ScriptedMqttHub();
        await using var client = ScriptedHubClient.Create(hub, clock, new TestLog(), o => o with { Port = port, OperationTimeout = TimeSpan.FromSeconds(15) });

        var connecting = client.ConnectAsync(Ct);
        using var accepted = await silent.AcceptTcpClientAsync(Ct);
        clock.Advance(TimeSpan.FromSeconds(14));
        Assert.False(connecting.IsCompleted, "the connect gave up before its timeout");
        clock.Advance(TimeSpan.FromSeconds(1));

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => connecting.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal("ConnectTimedOut", error.ErrorId);
        Assert.Equal(IoTHubConnectionState.Disconnected, client.State);
    }

    [Fact]
    public async Task TwinRequest_HubNeverAnswers_TwinRequestTimedOutAtTheOperationTimeout()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { AnswerTwin = false };
        await using var client = ScriptedHubClient.Create(hub, clock, new TestLog(), o => o with { OperationTimeout = TimeSpan.FromSeconds(10) });
        await client.ConnectAsync(Ct);

        var twin = client.GetTwinAsync(Ct);
        await hub.WaitForPublishesAsync(p => p.Any(x => x.Topic.StartsWith("$iothub/twin/GET/", StringComparison.Ordinal)));
        clock.Advance(TimeSpan.FromSeconds(9));
        Assert.False(twin.IsCompleted, "the request gave up before its timeout");
        clock.Advance(TimeSpan.FromSeconds(1));

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => twin.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal("TwinRequestTimedOut", error.ErrorId);
        Assert.Equal(IoTHubErrorKind.Timeout, error.Kind);
    }

    [Fact]
    public async Task TwinRequest_Throttled429Twice_TriedAgainAfterGrowingPauses_ThenSucceeds()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { AnswerTwin = true };
        hub.TwinStatuses.Enqueue(429);
        hub.TwinStatuses.Enqueue(429);
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log);
        await client.ConnectAsync(Ct);

        var twin = client.GetTwinAsync(Ct);
        var pauses = await clock.DriveBackoffAsync(log, twin);

        Assert.Equal(1, (await twin).DesiredVersion);
        Assert.Equal(3, hub.Publishes.Count(p => p.Topic.StartsWith("$iothub/twin/GET/", StringComparison.Ordinal)));
        Assert.Equal(2, pauses.Count);
        Assert.InRange(pauses[0].TotalSeconds, 0.25, 0.5);
        Assert.InRange(pauses[1].TotalSeconds, 0.5, 1.0);
    }

    [Fact]
    public async Task TwinRequest_ThrottledLongerThanTheOperationTimeout_FailsIoTHubThrottled()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { AnswerTwin = true };
        for (var i = 0; i < 100; i++)
        {
            hub.TwinStatuses.Enqueue(429);
        }

        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log, o => o with { OperationTimeout = TimeSpan.FromSeconds(20) });
        await client.ConnectAsync(Ct);

        var start = clock.Provider.GetUtcNow();
        var patch = client.UpdateReportedPropertiesAsync(new System.Text.Json.Nodes.JsonObject { ["a"] = 1 }, Ct);
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(async () => await clock.DriveBackoffAsync(log, patch));

        Assert.Equal("IoTHubThrottled", error.ErrorId);
        var requests = hub.Publishes.Count(p => p.Topic.StartsWith("$iothub/twin/PATCH/", StringComparison.Ordinal));
        Assert.InRange(requests, 3, 8);
        Assert.True(clock.Provider.GetUtcNow() - start <= TimeSpan.FromSeconds(21), "retried past the operation timeout");
    }
}
