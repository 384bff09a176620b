using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;
using MQTTnet;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// A persisting standalone emulator killed hard (SIGKILL) in the middle of telemetry and C2D traffic, three times over,
/// with more messages each time than the store's pruning step: what was acknowledged is there after every restart,
/// and the store keeps exactly the documented retention, on disk as in memory.
/// </summary>
public sealed class DurabilityTests : IDisposable
{
    private const int Window = 32;
    private readonly string dataPath = Path.Combine(Path.GetTempPath(), "iothubmqtt-durable-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly string ownerKey = SharedAccessKeys.Generate();

    public void Dispose()
    {
        try
        {
            Directory.Delete(dataPath, true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task KilledThreeTimesDuringTraffic_LosesNoAcknowledgedTelemetryOrCloudToDeviceMessage()
    {
        // 3 x 4,000 messages: more than the 1,000 the store prunes at a time, and more than any smaller disk-only limit.
        var run = new TrafficRun(dataPath, ownerKey, []);
        for (var cycle = 0; cycle < 3; cycle++)
        {
            await run.CycleAsync(cycle, telemetryBeforeKill: 4000);
        }

        var stored = await run.RestartAndReadAsync();
        var missing = run.AcknowledgedTelemetry.Where(body => !stored.Bodies.Contains(body)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} of {run.AcknowledgedTelemetry.Count} acknowledged telemetry messages are gone after the kills, e.g. {string.Join(", ", missing.Take(5))}.");
        Assert.Equal(Enumerable.Range(1, stored.Sequence.Count).Select(i => (long)i), stored.Sequence);
    }

    [Fact]
    public async Task KilledThreeTimesDuringTraffic_KeepsExactlyTheRetention_OnDiskAsInMemory()
    {
        const int Retention = 3500;
        var run = new TrafficRun(dataPath, ownerKey, ["--telemetry-retention", Retention.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        var perCycle = new List<List<string>>();
        for (var cycle = 0; cycle < 3; cycle++)
        {
            var before = run.AcknowledgedTelemetry.Count;
            await run.CycleAsync(cycle, telemetryBeforeKill: 1500);
            perCycle.Add([.. run.AcknowledgedTelemetry.Skip(before)]);
        }

        var stored = await run.RestartAndReadAsync();

        // The newest 3,500 sequence numbers, no fewer: 4,500 and more were stored.
        Assert.Equal(Retention, stored.Sequence.Count);
        Assert.Equal(Enumerable.Range(0, Retention).Select(i => stored.Sequence[^1] - Retention + 1 + i), stored.Sequence);

        // The last two cycles (at most 3,000 + what was in flight) all fall within it.
        var missing = perCycle[1].Concat(perCycle[2]).Where(body => !stored.Bodies.Contains(body)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} acknowledged messages within the retention are gone, e.g. {string.Join(", ", missing.Take(5))}.");

        // The database holds the retention and at most one pruning step more.
        var rows = await run.StoredRowCountAsync();
        Assert.InRange(rows, Retention, Retention + 1000);
    }

    /// <summary>One device sending telemetry with a window of QoS 1 publishes while the service sends it C2D messages; kills and restarts.</summary>
    private sealed class TrafficRun(string dataPath, string ownerKey, string[] extraArguments)
    {
        private readonly string deviceId = "durable-" + Guid.NewGuid().ToString("N")[..6];
        private readonly ConcurrentDictionary<string, bool> cloudAcknowledged = new();
        private readonly ConcurrentDictionary<string, bool> cloudReceived = new();
        private string? deviceKey;

        public List<string> AcknowledgedTelemetry { get; } = [];

        /// <summary>Starts the emulator, runs traffic until <paramref name="telemetryBeforeKill"/> publishes were acknowledged, and kills it while traffic still flows.</summary>
        public async Task CycleAsync(int cycle, int telemetryBeforeKill)
        {
            using var emulator = await ChildEmulator.StartAsync(dataPath, ownerKey, extraArguments);
            using var service = emulator.Service();
            if (deviceKey is null)
            {
                var created = await service.SendAsync(HttpMethod.Put, $"devices/{deviceId}", new JsonObject { ["deviceId"] = deviceId });
                Assert.Equal(HttpStatusCode.OK, created.Status);
                deviceKey = created.Json!["authentication"]!["symmetricKey"]!["primaryKey"]!.GetValue<string>();
            }

            // Whatever the previous kill left undelivered comes first on a fresh subscription.
            var device = new MqttClientFactory().CreateMqttClient();
            device.ApplicationMessageReceivedAsync += e =>
            {
                cloudReceived[Encoding.UTF8.GetString(e.ApplicationMessage.Payload)] = true;
                return Task.CompletedTask;
            };
            await device.ConnectAsync(emulator.Options(deviceId, deviceKey).Build());
            await device.SubscribeAsync($"devices/{deviceId}/messages/devicebound/#", MqttQualityOfServiceLevel.AtLeastOnce);

            using var stop = new CancellationTokenSource();
            var cloud = Task.Run(async () =>
            {
                for (var n = 0; !stop.IsCancellationRequested; n++)
                {
                    var body = $"c2d-{cycle}-{n}";
                    try
                    {
                        var sent = await service.SendAsync(HttpMethod.Post, $"$emulator/devices/{deviceId}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes(body), cancellationToken: stop.Token);
                        if (sent.Status == HttpStatusCode.OK)
                        {
                            cloudAcknowledged[body] = true;
                        }
                    }
                    catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
                    {
                        return; // the emulator was killed mid-request: not acknowledged
                    }
                }
            });

            var next = -1;
            var acknowledged = 0;
            var killed = new TaskCompletionSource();
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var senders = Enumerable.Range(0, Window).Select(_ => Task.Run(async () =>
            {
                // No new publish once the target is reached; up to Window - 1 are still in flight when the kill lands.
                while (Volatile.Read(ref acknowledged) < telemetryBeforeKill)
                {
                    var body = $"t-{cycle}-{Interlocked.Increment(ref next)}";
                    try
                    {
                        var result = await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"devices/{deviceId}/messages/events/")
                            .WithPayload(body).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
                        if (!result.IsSuccess)
                        {
                            return;
                        }
                    }
                    catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or ObjectDisposedException)
                    {
                        return; // the emulator is gone: this one was not acknowledged
                    }

                    lock (AcknowledgedTelemetry)
                    {
                        AcknowledgedTelemetry.Add(body);
                    }

                    if (Interlocked.Increment(ref acknowledged) == telemetryBeforeKill)
                    {
                        emulator.Kill(); // SIGKILL with publishes and C2D sends in flight
                        killed.TrySetResult();
                    }
                }
            })).ToList();

            await Task.WhenAll(senders).WaitAsync(TimeSpan.FromSeconds(120));
            TestContext.Current.SendDiagnosticMessage($"cycle {cycle}: {acknowledged} acknowledged in {watch.Elapsed.TotalSeconds:F1} s, {cloudAcknowledged.Count} C2D sent so far");
            Assert.True(killed.Task.IsCompleted, $"Only {acknowledged} telemetry messages were acknowledged before the emulator stopped answering.");
            await stop.CancelAsync();
            await cloud.WaitAsync(TimeSpan.FromSeconds(30));
            device.Dispose();
        }

        /// <summary>Restarts on the data path, collects every C2D message acknowledged and not yet received, and reads all telemetry.</summary>
        public async Task<(List<long> Sequence, HashSet<string> Bodies)> RestartAndReadAsync()
        {
            using var emulator = await ChildEmulator.StartAsync(dataPath, ownerKey, extraArguments);
            using var service = emulator.Service();
            var pending = cloudAcknowledged.Keys.Where(body => !cloudReceived.ContainsKey(body)).ToHashSet();
            var all = new TaskCompletionSource();
            using var device = new MqttClientFactory().CreateMqttClient();
            device.ApplicationMessageReceivedAsync += e =>
            {
                lock (pending)
                {
                    pending.Remove(Encoding.UTF8.GetString(e.ApplicationMessage.Payload));
                    if (pending.Count == 0)
                    {
                        all.TrySetResult();
                    }
                }

                return Task.CompletedTask;
            };
            await device.ConnectAsync(emulator.Options(deviceId, deviceKey!).Build());
            await device.SubscribeAsync($"devices/{deviceId}/messages/devicebound/#", MqttQualityOfServiceLevel.AtLeastOnce);
            lock (pending)
            {
                if (pending.Count == 0)
                {
                    all.TrySetResult();
                }
            }

            try
            {
                await all.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                lock (pending)
                {
                    Assert.Fail($"{pending.Count} of {cloudAcknowledged.Count} acknowledged C2D messages never arrived after the kills, e.g. {string.Join(", ", pending.Take(5))}.");
                }
            }

            Assert.True(cloudAcknowledged.Count > 10, "the C2D sender got too few messages through to prove anything");

            var sequence = new List<long>();
            var bodies = new HashSet<string>(StringComparer.Ordinal);
            long from = 0;
            while (true)
            {
                var page = await service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?from={from}&max=1000&deviceId={deviceId}");
                var messages = page.Json!["messages"]!.AsArray();
                if (messages.Count == 0)
                {
                    break;
                }

                foreach (var message in messages)
                {
                    sequence.Add(message!["sequenceNumber"]!.GetValue<long>());
                    bodies.Add(Encoding.UTF8.GetString(Convert.FromBase64String(message["body"]!.GetValue<string>())));
                }

                from = page.Json["next"]!.GetValue<long>();
            }

            return (sequence, bodies);
        }

        /// <summary>Telemetry rows in the database file (read after the last emulator stopped).</summary>
        public async Task<long> StoredRowCountAsync()
        {
            await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dataPath, "emulator.db")};Mode=ReadOnly;Pooling=False");
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM telemetry";
            return (long)(await command.ExecuteScalarAsync())!;
        }
    }
}
