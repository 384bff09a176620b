using System.Diagnostics;
using System.Globalization;
using System.Text;
using IoTHubMqtt.Core.Provisioning;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Emulator;

namespace IoTHubMqtt.Benchmarks;

/// <summary>
/// Fleet provisioning throughput: N devices against a fresh in-process emulator per scenario, registry (REST) and DPS
/// (MQTT/TLS), through the core clients the cmdlets use; prints a markdown table.
/// </summary>
internal static class FleetBenchmark
{
    public static async Task<int> RunAsync(BenchmarkArguments args)
    {
        var count = args.Int("devices", 1000);
        var outputPath = args.String("output");
        args.ThrowIfUnknown("fleet");
        var rows = new List<string>();

        async Task<(TimeSpan Elapsed, int Failed, int Retries)> RegistryAsync(int parallel, int requestsPerSecond)
        {
            await using var hub = await IoTHubEmulator.StartAsync(new IoTHubEmulatorOptions { ServiceRequestsPerSecond = requestsPerSecond });
            using var service = new IoTHubServiceClient(new IoTHubServiceOptions
            {
                ConnectionString = hub.OwnerConnectionString, Port = hub.HttpsPort, CaCertificatePath = hub.CaCertificatePath, IsEmulator = true,
            });
            await service.CreateDeviceAsync(new DeviceSpec { DeviceId = "warm-up" });
            var failed = 0;
            var clock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = parallel }, async (i, ct) =>
            {
                try
                {
                    var device = await service.CreateDeviceAsync(new DeviceSpec { DeviceId = $"reg-{i:D5}" }, ct);
                    _ = device.ConnectionString ?? throw new InvalidOperationException("no key");
                }
                catch (Exception ex) when (ex is IoTHubMqtt.Core.Errors.IoTHubMqttException or InvalidOperationException)
                {
                    Interlocked.Increment(ref failed);
                }
            });
            return (clock.Elapsed, failed, service.RetryCount);
        }

        async Task<(TimeSpan Elapsed, int Failed, int Retries)> DpsAsync(int parallel, int retryAfterSeconds)
        {
            await using var hub = await IoTHubEmulator.StartAsync(new IoTHubEmulatorOptions { ServiceRequestsPerSecond = 0, DpsRetryAfterSeconds = retryAfterSeconds });
            var groupKey = hub.AddEnrollmentGroup("bench");
            DpsRegistrationOptions Options(string id) => new()
            {
                IdScope = hub.IdScope, RegistrationId = id, GroupKey = groupKey, ProvisioningHost = "localhost", Port = hub.DpsPort,
                CaCertificatePath = hub.CaCertificatePath, Timeout = TimeSpan.FromSeconds(120),
            };
            await DpsClient.RegisterAsync(Options("warm-up"));
            var failed = 0;
            var clock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = parallel }, async (i, ct) =>
            {
                try
                {
                    var result = await DpsClient.RegisterAsync(Options($"dps-{i:D5}"), ct);
                    if (!result.IsAssigned)
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
                catch (IoTHubMqtt.Core.Errors.IoTHubMqttException)
                {
                    Interlocked.Increment(ref failed);
                }
            });
            return (clock.Elapsed, failed, 0);
        }

        void Row(string scenario, string parallel, (TimeSpan Elapsed, int Failed, int Retries) r)
        {
            var line = string.Create(CultureInfo.InvariantCulture,
                $"| {scenario} | {parallel} | {count} | {r.Elapsed.TotalSeconds:0.00} | {count / r.Elapsed.TotalSeconds:0} | {r.Failed} | {r.Retries} |");
            rows.Add(line);
            Console.WriteLine(line);
        }

        Console.WriteLine($"Provisioning {count} devices per scenario on {Environment.ProcessorCount} cores, .NET {Environment.Version}.");
        Row("Registry (REST PUT), emulator unthrottled", "8", await RegistryAsync(8, 0));
        Row("Registry (REST PUT), emulator unthrottled", "32", await RegistryAsync(32, 0));
        Row("Registry (REST PUT), emulator at its default 100 requests/s (429 + Retry-After)", "8", await RegistryAsync(8, 100));
        Row("DPS over MQTT/TLS, retry-after 1 s (emulator default)", "64", await DpsAsync(64, 1));
        Row("DPS over MQTT/TLS, retry-after 1 s (emulator default)", "128", await DpsAsync(128, 1));
        Row("DPS over MQTT/TLS, retry-after 0 s", "32", await DpsAsync(32, 0));

        var table = new StringBuilder()
            .AppendLine("| scenario | parallel | devices | seconds | devices/s | failed | retried requests |")
            .AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        rows.ForEach(r => table.AppendLine(r));
        Console.WriteLine();
        Console.WriteLine(table);
        if (outputPath is not null)
        {
            await File.WriteAllTextAsync(outputPath, table.ToString());
        }

        return 0;
    }
}
