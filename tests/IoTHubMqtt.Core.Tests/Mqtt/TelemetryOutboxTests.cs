using System.Globalization;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>
/// The telemetry sender against the scripted hub on a fake clock: the bounded outbox, order, sending again after a
/// lost connection, a hub that stops acknowledging, and messages that wait too long for a connection.
/// </summary>
public sealed class TelemetryOutboxTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SendAsync_OutboxFull_WaitsForRoomUntilHalfOfItIsAcknowledged()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { HoldAcknowledgements = true };
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log, o => o with { MaxInFlight = 2 });
        await client.ConnectAsync(Ct);
        Assert.Equal(8, client.Telemetry.Capacity);

        // Two in flight and six waiting their turn fill the outbox (four windows).
        var acknowledged = new List<Task<TelemetrySendResult>>();
        for (var i = 0; i < 8; i++)
        {
            var accepted = client.Telemetry.SendAsync(ScriptedHubClient.Message(i), Ct);
            Assert.True(accepted.IsCompletedSuccessfully, $"message {i} waited with room in the outbox");
            acknowledged.Add(await accepted);
        }

        var ninth = client.Telemetry.SendAsync(ScriptedHubClient.Message(8), Ct).AsTask();
        Assert.Equal(8, client.Telemetry.Count);
        Assert.False(ninth.IsCompleted, "the ninth message was let into a full outbox");

        // Three acknowledged: five left, more than half the outbox, so the producer still waits.
        for (var i = 0; i < 3; i++)
        {
            await hub.WaitForPublishesAsync(p => p.Count >= i + 2);
            await hub.ReleaseAcknowledgementsAsync(1);
            await acknowledged[i].WaitAsync(TimeSpan.FromSeconds(30), Ct);
        }

        Assert.False(ninth.IsCompleted, "the producer was woken before half the outbox was free");

        // Four acknowledged: half the outbox is free and the producer goes on.
        await hub.WaitForPublishesAsync(p => p.Count >= 5);
        await hub.ReleaseAcknowledgementsAsync(1);
        acknowledged.Add(await ninth.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        hub.HoldAcknowledgements = false;

        await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(Enumerable.Range(0, 9).Select(i => i.ToString(CultureInfo.InvariantCulture)), hub.TelemetryBodies);
    }

    [Fact]
    public async Task SendAsync_LargeMessages_TheOutboxHoldsAtMostFourMegabytesBeyondTheWindow()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { HoldAcknowledgements = true };
        await using var client = ScriptedHubClient.Create(hub, clock, new TestLog());
        await client.ConnectAsync(Ct);
        var body = new byte[100 * 1024];

        var acknowledged = new List<Task<TelemetrySendResult>>();
        ValueTask<Task<TelemetrySendResult>> accepted;
        while ((accepted = client.Telemetry.SendAsync(new TelemetryMessage(body), Ct)).IsCompletedSuccessfully)
        {
            acknowledged.Add(await accepted);
        }

        // 64 in flight, then waiting ones up to the first that reaches 4 MB (41 of 100 KB); the next one waits.
        Assert.Equal(64 + 41, acknowledged.Count);
        hub.HoldAcknowledgements = false;
        acknowledged.Add(await accepted.AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct));
        await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.Equal(106, hub.TelemetryBodies.Count);
    }

    [Fact]
    public async Task SendAsync_CancelledWhileWaitingForRoom_ThatMessageIsNeverSent()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { HoldAcknowledgements = true };
        await using var client = ScriptedHubClient.Create(hub, clock, new TestLog(), o => o with { MaxInFlight = 1 });
        await client.ConnectAsync(Ct);
        var sent = new List<Task<TelemetrySendResult>>();
        for (var i = 0; i < 4; i++)
        {
            sent.Add(await client.Telemetry.SendAsync(ScriptedHubClient.Message(i), Ct));
        }

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var withdrawn = client.Telemetry.SendAsync(ScriptedHubClient.Message(4), cancel.Token).AsTask();
        Assert.False(withdrawn.IsCompleted, "the outbox was not full");
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => withdrawn);
        hub.HoldAcknowledgements = false;
        await Task.WhenAll(sent).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        var last = await client.Telemetry.SendAsync(ScriptedHubClient.Message(5), Ct);
        await last.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(["0", "1", "2", "3", "5"], hub.TelemetryBodies);
    }

    [Fact]
    public async Task ConnectionDropped_UnacknowledgedMessagesGoAgainInOrder_AfterTheReconnect()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { HoldAcknowledgements = true };
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log, o => o with { MaxInFlight = 8 });
        await client.ConnectAsync(Ct);
        var acknowledged = new List<Task<TelemetrySendResult>>();
        for (var i = 0; i < 12; i++)
        {
            acknowledged.Add(await client.Telemetry.SendAsync(ScriptedHubClient.Message(i), Ct));
        }

        await hub.WaitForPublishesAsync(p => p.Count(x => x.QoS == 1) >= 8);
        var from = log.Count;
        var reconnected = hub.NextConnectionAsync();
        hub.DropConnections();
        hub.HoldAcknowledgements = false;
        await clock.DriveBackoffAsync(log, reconnected, from);

        await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        var second = hub.Publishes.Where(p => p.Connection == hub.Publishes.Max(x => x.Connection) && p.QoS == 1).Select(p => p.Body).ToList();
        Assert.True(Enumerable.Range(0, 12).Select(i => i.ToString(CultureInfo.InvariantCulture)).SequenceEqual(second),
            "after the reconnect: " + string.Join(",", second) + "; all: " + string.Join(",", hub.Publishes.Select(p => $"{p.Connection}:{p.Body}")) + "; log: " + log);
        Assert.All(acknowledged.Take(8), a => Assert.Equal(2, a.Result.Attempts));
        Assert.Equal(1, client.ReconnectCount);
    }

    [Fact]
    public async Task HubStopsAcknowledging_AfterTheOperationTimeoutTheClientReconnects_AndSendsThemAgain()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { HoldAcknowledgements = true };
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log, o => o with { OperationTimeout = TimeSpan.FromSeconds(20), ReconnectInitialDelay = TimeSpan.FromMilliseconds(100) });
        await client.ConnectAsync(Ct);
        var acknowledged = new List<Task<TelemetrySendResult>>();
        for (var i = 0; i < 5; i++)
        {
            acknowledged.Add(await client.Telemetry.SendAsync(ScriptedHubClient.Message(i), Ct));
        }

        await hub.WaitForPublishesAsync(p => p.Count >= 5);
        clock.Advance(TimeSpan.FromSeconds(19));
        Assert.All(acknowledged, a => Assert.False(a.IsCompleted));
        Assert.Equal(1, hub.ConnectCount);

        var from = log.Count;
        var reconnected = hub.NextConnectionAsync();
        clock.Advance(TimeSpan.FromSeconds(6)); // past the timeout, and the watchdog's next look (a quarter of it)
        await log.WaitForAsync("acknowledged no message for 20 s", from);
        hub.HoldAcknowledgements = false;
        await clock.DriveBackoffAsync(log, reconnected, from);

        await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(2, hub.ConnectCount);
        Assert.All(acknowledged, a => Assert.Equal(2, a.Result.Attempts));
    }

    [Fact]
    public async Task ConnectionLostForLongerThanTheOperationTimeout_WaitingMessagesFailNotConnected()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub();
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log, o => o with { OperationTimeout = TimeSpan.FromSeconds(20) });
        await client.ConnectAsync(Ct);
        var from = log.Count;
        hub.RefuseConnections = 3; // server unavailable
        hub.DropConnections();
        await log.WaitForAsync("Connection lost", from);

        var waiting = await client.Telemetry.SendAsync(ScriptedHubClient.Message(1), Ct);
        clock.Advance(TimeSpan.FromSeconds(19));
        Assert.False(waiting.IsCompleted, "the message gave up before the operation timeout");
        clock.Advance(TimeSpan.FromSeconds(6));

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal("NotConnected", error.ErrorId);
        Assert.Equal(IoTHubConnectionState.Reconnecting, client.State);
        Assert.Empty(hub.TelemetryBodies);
    }

    [Fact]
    public async Task HubClosesConnectionsSoonAfterAcknowledgingSome_PausesStayAtTheFirstStep_AndEachMessageArrivesOnce()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { ThrottleAfter = 25 };
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log, o => o with
        {
            MaxInFlight = 16, ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromSeconds(2),
        });
        await client.ConnectAsync(Ct);

        const int total = 150;
        var sending = Task.Run(async () =>
        {
            var acknowledged = new List<Task<TelemetrySendResult>>();
            for (var i = 0; i < total; i++)
            {
                acknowledged.Add(await client.Telemetry.SendAsync(ScriptedHubClient.Message(i), Ct));
            }

            return await Task.WhenAll(acknowledged);
        }, Ct);
        var pauses = await clock.DriveBackoffAsync(log, sending);
        var results = await sending;

        // Each connection ended soon after it was made, having had messages acknowledged: progress at the hub's pace,
        // so every pause is the backoff's first step (jittered between half and all of 100 ms), never a longer one.
        Assert.All(pauses, p => Assert.InRange(p.TotalMilliseconds, 49, 101));

        // 25 acknowledged a connection: the first carried 25, five reconnects the other 125.
        Assert.Equal(total, results.Length);
        Assert.Equal(5, client.ReconnectCount);
        Assert.Equal(5, pauses.Count);
        Assert.Contains(log.Lines, line => line.Contains("soon after it was made, with 25 message(s) acknowledged", StringComparison.Ordinal));

        // What the hub acknowledged was not sent again: each message arrived once.
        Assert.Equal(Enumerable.Range(0, total).Select(i => i.ToString(CultureInfo.InvariantCulture)), hub.TelemetryBodies);
    }

    [Fact]
    public async Task HubClosesConnectionsSoonAfterTheyAreMade_AcknowledgingNothing_PausesGrow_ThenTheMessageArrives()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { ThrottleAfter = 0 }; // every telemetry publish closes the connection
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log, o => o with
        {
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(100), ReconnectMaxDelay = TimeSpan.FromSeconds(2),
        });
        await client.ConnectAsync(Ct);

        // The hub lets the message through once the client has announced its sixth pause.
        var announced = 0;
        var sixth = log.WaitForMatchAsync(line => line.Contains("next attempt in", StringComparison.Ordinal) && ++announced == 6, 0, TimeSpan.FromMinutes(2), "the sixth pause", Ct);
        _ = sixth.ContinueWith(_ => hub.ThrottleAfter = null, Ct, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        var sent = await client.Telemetry.SendAsync(ScriptedHubClient.Message(1), Ct);
        var pauses = await clock.DriveBackoffAsync(log, sent);

        Assert.Equal(1, (await sent).Attempts - pauses.Count);
        Assert.DoesNotContain(log.Lines, line => line.Contains("acknowledged (the hub may be throttling", StringComparison.Ordinal));

        // Nothing acknowledged on any connection: each pause is the next step of one backoff, jittered between half and
        // all of min(2 s, 100 ms × 2^n).
        Assert.InRange(pauses.Count, 6, 9);
        for (var n = 0; n < pauses.Count; n++)
        {
            var ceiling = Math.Min(2000, 100 * Math.Pow(2, n));
            Assert.InRange(pauses[n].TotalMilliseconds, (ceiling / 2) - 1, ceiling + 1);
        }

        Assert.Equal(["1"], hub.TelemetryBodies);
    }
}
