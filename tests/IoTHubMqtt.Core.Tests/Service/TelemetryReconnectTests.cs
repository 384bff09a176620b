using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Core.Tests.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Service;

/// <summary>A telemetry reader (the Event Hubs processor) whose AMQP connections the emulator drops while it reads.</summary>
public sealed class TelemetryReconnectTests(EmulatorFixture hub) : IClassFixture<EmulatorFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ConnectionDroppedMidStream_ReaderReconnects_EveryMessageArrivesOnceInOrderPerPartition()
    {
        const int perDevice = 40;
        var log = new ConcurrentQueue<string>();
        using var service = ServiceClientTests.NewClient(hub.Emulator, o => new IoTHubServiceOptions
        {
            ConnectionString = o.ConnectionString, Port = o.Port, CaCertificatePath = o.CaCertificatePath, IsEmulator = true,
            RetryInitialDelay = TimeSpan.FromMilliseconds(100), RetryMaxDelay = TimeSpan.FromSeconds(1), Log = log.Enqueue,
        });
        var devices = new List<(string Id, IoTHubDeviceClient Client)>();
        try
        {
            for (var i = 0; i < 6; i++)
            {
                var (id, key) = hub.CreateDevice("drop");
                var client = HubProbe.NewClient(hub.Emulator, id, key);
                await client.ConnectAsync(Ct);
                devices.Add((id, client));
            }

            var ids = devices.Select(d => d.Id).ToHashSet();
            await using var reader = await service.OpenTelemetryReaderAsync(new TelemetryReadOptions { EnqueuedAfter = DateTimeOffset.UtcNow.AddSeconds(-1) }, Ct);

            // The devices keep sending, a message every few milliseconds, while the connection is dropped twice.
            var sending = Task.WhenAll(devices.Select(d => Task.Run(async () =>
            {
                for (var n = 0; n < perDevice; n++)
                {
                    await d.Client.SendTelemetryAsync(TelemetryMessage.FromText($"{{\"n\":{n}}}", "application/json"), Ct);
                    await Task.Delay(15, Ct);
                }
            }, Ct)));

            var events = new List<TelemetryEvent>();
            var dropped = new List<int>();
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (DateTime.UtcNow < deadline && events.Count < ids.Count * perDevice)
            {
                events.AddRange((await reader.ReadAsync(50, TimeSpan.FromMilliseconds(500), Ct)).Where(e => ids.Contains(e.DeviceId)));
                if ((dropped.Count == 0 && events.Count >= 30) || (dropped.Count == 1 && events.Count >= 120))
                {
                    dropped.Add(hub.Emulator.DropAmqpConnections());
                }
            }

            await sending;
            Assert.Equal(2, dropped.Count);
            Assert.All(dropped, d => Assert.True(d >= 1, "the reader's connection was open when it was dropped"));
            foreach (var (id, _) in devices)
            {
                var numbers = events.Where(e => e.DeviceId == id).Select(e => (int)JsonNode.Parse(Encoding.UTF8.GetString(e.Body))!["n"]!).ToList();
                Assert.Equal(Enumerable.Range(0, perDevice), numbers);
            }

            foreach (var partition in events.GroupBy(e => e.PartitionId))
            {
                var sequence = partition.Select(e => e.SequenceNumber).ToList();
                Assert.Equal(sequence.Order(), sequence);
                Assert.Equal(sequence.Count, sequence.Distinct().Count());
            }
        }
        finally
        {
            foreach (var (_, client) in devices)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task HubGoneForGood_ReadEndsWithIoTHubConnectionFailed_AfterTheAttempts()
    {
        await using var gone = EmulatorFixture.Start(_ => { });
        using var service = ServiceClientTests.NewClient(gone.Emulator, o => new IoTHubServiceOptions
        {
            ConnectionString = o.ConnectionString, Port = o.Port, CaCertificatePath = o.CaCertificatePath, IsEmulator = true,
            MaxRetries = 2, RetryInitialDelay = TimeSpan.FromMilliseconds(100), RetryMaxDelay = TimeSpan.FromMilliseconds(200),
        });
        await using var reader = await service.OpenTelemetryReaderAsync(null, Ct);
        Assert.Empty(await reader.ReadAsync(10, TimeSpan.FromMilliseconds(200), Ct));

        await gone.Emulator.StopAsync();
        var failed = await Assert.ThrowsAsync<IoTHubMqttException>(async () =>
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline)
            {
                await reader.ReadAsync(10, TimeSpan.FromSeconds(1), Ct);
            }
        });

        Assert.Equal("IoTHubConnectionFailed", failed.ErrorId);
        Assert.Contains("attempts in a row", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadWhileReconnecting_IsCancelledAtOnce()
    {
        using var service = ServiceClientTests.NewClient(hub.Emulator, o => new IoTHubServiceOptions
        {
            ConnectionString = o.ConnectionString, Port = o.Port, CaCertificatePath = o.CaCertificatePath, IsEmulator = true,
            RetryInitialDelay = TimeSpan.FromSeconds(5), RetryMaxDelay = TimeSpan.FromSeconds(5),
        });
        await using var reader = await service.OpenTelemetryReaderAsync(new TelemetryReadOptions { EnqueuedAfter = DateTimeOffset.UtcNow }, Ct);
        hub.Emulator.DropAmqpConnections();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cancel.CancelAfter(TimeSpan.FromMilliseconds(300));
        var clock = System.Diagnostics.Stopwatch.StartNew();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reader.ReadAsync(10, TimeSpan.FromSeconds(30), cancel.Token));
        await reader.DisposeAsync();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"cancelled and closed within {clock.Elapsed}");
    }
}
