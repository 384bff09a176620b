using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>
/// The device client's retry decisions follow the ErrorIds table: a connect or a twin request that fails with a transient
/// error is tried again after a pause, one that fails with a permanent error is not. On a fake clock, against the
/// scripted hub.
/// </summary>
public sealed class TransientErrorRetryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Connect_RefusedAsServerUnavailable_IsTransient_TriedThreeTimes()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { RefuseConnections = 3 }; // CONNACK 3: server unavailable
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log);

        var connecting = client.ConnectAsync(Ct);
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(async () => await clock.DriveBackoffAsync(log, connecting));

        Assert.Equal(ErrorIds.IoTHubUnavailable, error.ErrorId);
        Assert.True(error.IsTransient);
        Assert.Equal(2, log.Lines.Count(l => l.Contains("Connect attempt", StringComparison.Ordinal) && l.Contains("next attempt in", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Connect_RefusedAsNotAuthorized_IsNotTransient_TriedOnce()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { RefuseConnections = 5 }; // CONNACK 5: not authorized
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log);

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => client.ConnectAsync(Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct));

        Assert.Equal(ErrorIds.IoTHubUnauthorized, error.ErrorId);
        Assert.False(error.IsTransient);
        Assert.DoesNotContain(log.Lines, l => l.Contains("next attempt in", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TwinRequest_AnsweredWithServerErrors_IsTransient_TriedAgainUntilItSucceeds()
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { AnswerTwin = true };
        hub.TwinStatuses.Enqueue(500);
        hub.TwinStatuses.Enqueue(503);
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log);
        await client.ConnectAsync(Ct);

        var twin = client.GetTwinAsync(Ct);
        var pauses = await clock.DriveBackoffAsync(log, twin);

        Assert.Equal(1, (await twin).DesiredVersion);
        Assert.Equal(2, pauses.Count);
        Assert.Equal(3, hub.Publishes.Count(p => p.Topic.StartsWith("$iothub/twin/GET/", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(400, ErrorIds.TwinRequestInvalid)]
    [InlineData(404, ErrorIds.TwinNotFound)]
    [InlineData(409, ErrorIds.TwinRequestFailed)]
    public async Task TwinRequest_AnsweredWithAPermanentError_IsNotTriedAgain(int status, string errorId)
    {
        var clock = TestClock.Of(ClockKind.Fake);
        await using var hub = new ScriptedMqttHub { AnswerTwin = true };
        hub.TwinStatuses.Enqueue(status);
        var log = new TestLog();
        await using var client = ScriptedHubClient.Create(hub, clock, log);
        await client.ConnectAsync(Ct);

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => client.GetTwinAsync(Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct));

        Assert.Equal(errorId, error.ErrorId);
        Assert.False(error.IsTransient);
        Assert.Equal(1, hub.Publishes.Count(p => p.Topic.StartsWith("$iothub/twin/GET/", StringComparison.Ordinal)));
    }
}
