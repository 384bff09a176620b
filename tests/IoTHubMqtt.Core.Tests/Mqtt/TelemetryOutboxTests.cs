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

        // Two in flight and two waiting their turn fill the outbox (twice the window).
        var acknowledged = new List<Task<TelemetrySendResult>>();
        for (var i = 0; i < 4; i++)
        {
            var accepted = client.Telemetry.SendAsync(ScriptedHubClient.Message(i), Ct);
            Assert.True(accepted.IsCompletedSuccessfully, $"message {i} waited with room in the outbox");
            acknowledged.Add(await accepted);
        }

        var fifth = client.Telemetry.SendAsync(ScriptedHubClient.Message(4), Ct).AsTask();
        Assert.Equal(4, client.Telemetry.Count);
        Assert.False(fifth.IsCompleted, "the fifth message was let into a full outbox");

        // One acknowledged: three left, more than half the outbox, so the producer still waits.
        await hub.WaitForPublishesAsync(p => p.Count >= 2);
        await hub.ReleaseAcknowledgementsAsync(1);
        await acknowledged[0].WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.False(fifth.IsCompleted, "the producer was woken before half the outbox was free");

        // Two acknowledged: half the outbox is free and the producer goes on.
        await hub.ReleaseAcknowledgementsAsync(1);
        acknowledged.Add(await fifth.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        hub.HoldAcknowledgements = false;

        await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(["0", "1", "2", "3", "4"], hub.TelemetryBodies);
    }

    [Fact]
    public async Task SendAsync_CancelledWhileWaitingForRoom_ThatMessageIsNeverSent()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { HoldAcknowledgements = true };
        await using var client = ScriptedHubClient.Create(hub, clock, new TestLog(), o => o with { MaxInFlight = 1 });
        await client.ConnectAsync(Ct);
        var first = await client.Telemetry.SendAsync(ScriptedHubClient.Message(0), Ct);
        var second = await client.Telemetry.SendAsync(ScriptedHubClient.Message(1), Ct);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var third = client.Telemetry.SendAsync(ScriptedHubClient.Message(2), cancel.Token).AsTask();
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => third);
        hub.HoldAcknowledgements = false;
        await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        var fourth = await client.Telemetry.SendAsync(ScriptedHubClient.Message(3), Ct);
        await fourth.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(["0", "1", "3"], hub.TelemetryBodies);
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
    public async Task HubClosesConnectionsSoonAfterTheyAreMade_PausesGrow_AndEveryMessageArrives()
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

        Assert.Equal(total, results.Length);
        Assert.True(client.ReconnectCount >= 5, $"{client.ReconnectCount} reconnects");
        Assert.Contains(log.Lines, line => line.Contains("soon after it was made", StringComparison.Ordinal));

        // Each connection ends soon after it was made, so each pause is the next step of one backoff: jittered
        // between half and all of min(2 s, 100 ms × 2^n).
        for (var n = 0; n < pauses.Count; n++)
        {
            var ceiling = Math.Min(2000, 100 * Math.Pow(2, n));
            Assert.InRange(pauses[n].TotalMilliseconds, (ceiling / 2) - 1, ceiling + 1);
        }

        var bodies = hub.TelemetryBodies.ToHashSet();
        Assert.All(Enumerable.Range(0, total), i => Assert.Contains(i.ToString(CultureInfo.InvariantCulture), bodies));
    }
}
