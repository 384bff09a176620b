using System.Text;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Core.Tests.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Service;

/// <summary>
/// A whole telemetry read in one call (what Receive-IoTHubTelemetry makes): however it ends (its count, cancelled, the
/// caller failing to take a batch), the reader is closed before the call returns: no AMQP connection is left open.
/// </summary>
public sealed class TelemetryReceiveTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly EmulatorFixture hub = EmulatorFixture.Start(_ => { });
    private IoTHubServiceClient service = null!;
    private string deviceId = "";

    public async ValueTask InitializeAsync()
    {
        service = ServiceClientTests.NewClient(hub.Emulator);
        var (id, key) = hub.CreateDevice("receive");
        deviceId = id;
        await using var device = HubProbe.NewClient(hub.Emulator, id, key);
        await device.ConnectAsync(Ct);
        for (var n = 1; n <= 5; n++)
        {
            await device.SendTelemetryAsync(TelemetryMessage.FromText($"m{n}", "text/plain"), Ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        service.Dispose();
        await hub.DisposeAsync();
    }

    /// <summary>The emulator closes its side when the client's close arrives, a moment after the call returned: waited for, with a guard against a hang.</summary>
    private async Task AssertConnectionsClosedAsync()
    {
        var guard = DateTime.UtcNow.AddMinutes(1);
        while (hub.Emulator.AmqpConnectionCount > 0 && DateTime.UtcNow < guard)
        {
            await Task.Delay(50, Ct);
        }

        Assert.Equal(0, hub.Emulator.AmqpConnectionCount);
    }

    private static string Body(TelemetryEvent e) => Encoding.UTF8.GetString(e.Body);

    [Fact]
    public async Task ReadsItsCount_InOrder_ThenCloses()
    {
        var bodies = new List<string>();
        TelemetryReader? open = null;
        var result = await service.ReceiveTelemetryAsync(new TelemetryReceiveRequest { DeviceId = deviceId, Count = 3, Timeout = TimeSpan.FromMinutes(2) },
            (batch, _) => Task.FromResult(batch.Write(e => bodies.Add(Body(e)))), reader => open = reader, Ct);

        Assert.Equal(["m1", "m2", "m3"], bodies);
        Assert.Equal(3, result.Received);
        Assert.Null(result.Shortfall(deviceId));
        Assert.Equal(["0", "1", "2", "3"], open!.PartitionIds);
        await AssertConnectionsClosedAsync();
    }

    [Fact]
    public async Task Cancelled_WhileWaitingForMore_ClosesBeforeItReturns()
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var bodies = new List<string>();
        var reading = service.ReceiveTelemetryAsync(new TelemetryReceiveRequest { DeviceId = deviceId, Count = 10, Timeout = null },
            (batch, _) =>
            {
                var written = batch.Write(e => bodies.Add(Body(e)));
                if (batch.ReceivedBefore + written == 5)
                {
                    cancel.Cancel(); // everything there is was read: the read now waits for more
                }

                return Task.FromResult(written);
            }, null, cancel.Token);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);
        Assert.Equal(["m1", "m2", "m3", "m4", "m5"], bodies);
        await AssertConnectionsClosedAsync();
    }

    [Fact]
    public async Task CallerFailsToTakeABatch_TheReadEndsWithItsError_Closed_AndTheCheckpointIsBeforeTheMessage()
    {
        var file = Path.Combine(Path.GetTempPath(), $"iothubmqtt-receive-{Guid.NewGuid():N}.json");
        try
        {
            var request = new TelemetryReceiveRequest { DeviceId = deviceId, Count = 10, Timeout = TimeSpan.FromMinutes(2), Checkpoint = file };
            var taken = new List<string>();
            var failing = service.ReceiveTelemetryAsync(request, (batch, _) => Task.FromResult(batch.Write(e =>
            {
                if (taken.Count == 2)
                {
                    throw new InvalidOperationException("the pipeline stopped");
                }

                taken.Add(Body(e));
            })), null, Ct);

            Assert.Equal("the pipeline stopped", (await Assert.ThrowsAsync<InvalidOperationException>(() => failing)).Message);
            Assert.Equal(["m1", "m2"], taken);
            await AssertConnectionsClosedAsync();

            var next = new List<string>();
            await service.ReceiveTelemetryAsync(new TelemetryReceiveRequest { DeviceId = deviceId, Count = 1, Timeout = TimeSpan.FromMinutes(2), Checkpoint = file }, (batch, _) => Task.FromResult(batch.Write(e => next.Add(Body(e)))), null, Ct);
            Assert.Equal(["m3"], next);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("StartTime", "TelemetryStartConflict")]
    [InlineData("Storage", "CheckpointContainerMissing")]
    [InlineData("Interval", "LoadBalancingIntervalInvalid")]
    public async Task InvalidRequest_IsAnErrorBeforeAnythingIsOpened(string what, string errorId)
    {
        var request = what switch
        {
            "StartTime" => new TelemetryReceiveRequest { StartTime = DateTimeOffset.UtcNow, Start = TelemetryStart.Latest, StartGiven = true },
            "Storage" => new TelemetryReceiveRequest { StorageConnectionString = "UseDevelopmentStorage=true" },
            _ => new TelemetryReceiveRequest { LoadBalancingInterval = TimeSpan.Zero },
        };

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.ReceiveTelemetryAsync(request, (_, _) => Task.FromResult(0), null, Ct));
        Assert.Equal(errorId, error.ErrorId);
        Assert.Equal(IoTHubErrorKind.InvalidArgument, error.Kind);
        Assert.Equal(0, hub.Emulator.AmqpConnectionCount);
    }

    [Theory]
    [InlineData("https://acct.blob.core.windows.net/checkpoints?sv=x", null, "https://acct.blob.core.windows.net/checkpoints")]
    [InlineData("checkpoints", "UseDevelopmentStorage=true", "container checkpoints")]
    [InlineData("readers.json", null, "/data/readers.json")]
    public void CheckpointLocation_IsAContainerUrl_AContainerName_OrAFile(string checkpoint, string? storage, string shown)
    {
        var location = TelemetryCheckpointLocation.Parse(checkpoint, storage, path => "/data/" + path);
        Assert.Equal(shown, location.ToString());
        Assert.Equal(checkpoint.EndsWith(".json", StringComparison.Ordinal), !location.IsBlob);
    }
}
