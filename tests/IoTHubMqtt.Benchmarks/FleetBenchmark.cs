using System.Diagnostics;
using System.Globalization;
using System.Text;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Provisioning;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Core.Service.Registry;
using IoTHubMqtt.Emulator;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Benchmarks;

/// <summary>
/// Fleet provisioning throughput, devices a second for each path the module offers, side by side in one run, rounds
/// interleaved (per-device, bulk, import job, DPS, per-device, bulk, …): per-device REST PUTs (8 at a time, what
/// New-IoTHubDevice did before bulk calls), bulk registry calls of 100 (DeviceRegistryWriter, what New-IoTHubDevice does),
/// an import job through Azurite blob storage (RegistryJobs, what Import-IoTHubDevice does), and DPS registrations over
/// MQTT/TLS (128 at a time, Register-IoTHubDevice's default). Each path of each round provisions N new devices into a fresh
/// in-process emulator. With --tier (and --units) the emulator applies that tier's throttles and the table adds the
/// minimum time the tier's quotas allow and how far each path is from it. With --cmdlets true every path runs through the
/// module's cmdlets at their defaults instead, in a new PowerShell host process each time (New-IoTHubDevice once a device,
/// New-IoTHubDevice from the pipeline, Import-IoTHubDevice, Register-IoTHubDevice), the emulator started in it.
/// </summary>
internal static class FleetBenchmark
{
    private static readonly string[] AllPaths = ["per-device", "bulk", "import", "dps"];

    public static async Task<int> RunAsync(BenchmarkArguments args)
    {
        var count = args.Int("devices", 1000);
        var rounds = args.Int("rounds", 9);
        var paths = (args.String("paths") ?? string.Join(',', AllPaths)).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var tierText = args.String("tier");
        var units = args.Int("units", 1);
        var outputPath = args.String("output");
        var cmdlets = args.String("cmdlets") is { } c && bool.Parse(c);
        args.ThrowIfUnknown("fleet");
        if (paths.Except(AllPaths).FirstOrDefault() is { } unknown)
        {
            throw new ArgumentException($"--paths takes {string.Join(", ", AllPaths)}, not '{unknown}'.");
        }

        IoTHubTier? tier = tierText is null ? null : Enum.Parse<IoTHubTier>(tierText, ignoreCase: true);
        using var azurite = paths.Contains("import") ? new AzuriteFixture() : null;
        if (azurite?.Missing is { } missing)
        {
            throw new InvalidOperationException(missing);
        }

        var results = paths.ToDictionary(p => p, _ => new List<(double Seconds, int Failed, int Throttled)>());
        Console.Error.WriteLine($"Fleet: {count} devices a path, {rounds} rounds, paths {string.Join(", ", paths)}{(tier is null ? ", unthrottled" : $", emulated {tier} x{units}")}; {Environment.ProcessorCount} cores.");
        for (var round = 0; round <= rounds; round++)
        {
            foreach (var path in paths)
            {
                var result = cmdlets
                    ? await RunCmdletAsync(path, count, tier, units, azurite).ConfigureAwait(false)
                    : await RunPathAsync(path, count, round, tier, units, azurite).ConfigureAwait(false);
                if (round > 0)
                {
                    results[path].Add(result); // round 0 warms the JIT and the machine's caches
                }

                Console.Error.WriteLine($"round {round}/{rounds} {path}: {result.Seconds:0.00} s, {count / result.Seconds:0} devices/s, {result.Failed} failed, {result.Throttled} throttled answers");
            }
        }

        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"Provisioning {count} devices a path {(cmdlets ? "through the cmdlets at their defaults" : "through the core clients")} against the in-process emulator{(tier is null ? " (unthrottled)" : $" emulating {tier} with {units} unit{(units == 1 ? "" : "s")}")}, {rounds} interleaved rounds, {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}:");
        md.AppendLine();
        md.Append("| path | devices/s (median) | min | max | seconds (median) | failed |");
        md.AppendLine(tier is null ? string.Empty : " quota minimum | over the minimum (median) |");
        md.Append("| --- | ---: | ---: | ---: | ---: | ---: |");
        md.AppendLine(tier is null ? string.Empty : " ---: | ---: |");
        foreach (var path in paths)
        {
            var seconds = results[path].Select(r => r.Seconds).ToList();
            var rates = seconds.Select(s => count / s).ToList();
            md.Append(CultureInfo.InvariantCulture, $"| {(cmdlets ? DescribeCmdlet(path) : Describe(path))} | {Median(rates):0} | {rates.Min():0} | {rates.Max():0} | {Median(seconds):0.00} | {results[path].Sum(r => r.Failed)} |");
            if (tier is { } t)
            {
                var minimum = QuotaMinimum(path, count, t, units);
                md.Append(CultureInfo.InvariantCulture, $" {minimum:0} s | {(minimum > 0 ? $"{(Median(seconds) / minimum - 1) * 100:0.0} %" : "–")} |");
            }

            md.AppendLine();
        }

        Console.WriteLine(md.ToString());
        if (outputPath is not null)
        {
            await File.WriteAllTextAsync(outputPath, md.ToString()).ConfigureAwait(false);
        }

        return results.Values.Sum(r => r.Sum(x => x.Failed)) == 0 ? 0 : 1;
    }

    private static string Describe(string path) => path switch
    {
        "per-device" => "per-device REST PUT, 8 at a time",
        "bulk" => "bulk registry calls of 100 (New-IoTHubDevice)",
        "import" => "import job via blob storage (Import-IoTHubDevice)",
        _ => "DPS over MQTT/TLS, 128 at a time (Register-IoTHubDevice)",
    };

    private static string DescribeCmdlet(string path) => path switch
    {
        "per-device" => "`New-IoTHubDevice -DeviceId` once a device",
        "bulk" => "`… \\| New-IoTHubDevice` (bulk calls of 100)",
        "import" => "`… \\| Import-IoTHubDevice` (import job)",
        _ => "`… \\| Register-IoTHubDevice` (DPS)",
    };

    /// <summary>One path through the module's cmdlets in a new host process; the emulator is started in it, outside the timing.</summary>
    private static async Task<(double Seconds, int Failed, int Throttled)> RunCmdletAsync(string path, int count, IoTHubTier? tier, int units, AzuriteFixture? azurite)
    {
        var devices = $"$ids = 1..{count.ToString(CultureInfo.InvariantCulture)} | ForEach-Object {{ 'dev-{{0:D6}}' -f $_ }}; ";
        var run = path switch
        {
            "per-device" => "$out = $ids | ForEach-Object { New-IoTHubDevice -DeviceId $_ }; ",
            "bulk" => "$out = $ids | ForEach-Object { [pscustomobject]@{ DeviceId = $_ } } | New-IoTHubDevice; ",
            "import" => "$r = $ids | ForEach-Object { @{ DeviceId = $_ } } | Import-IoTHubDevice -StorageConnectionString $env:AZURE_STORAGE_CONNECTION_STRING -Container ('bench-' + [guid]::NewGuid().ToString('N')); $out = 1..$r.Succeeded; ",
            _ => "$key = $hub.AddEnrollmentGroup('bench'); $out = $ids | Register-IoTHubDevice -IdScope $hub.IdScope -GroupKey $key -ProvisioningHost localhost -Port $hub.DpsPort -CaCertificatePath $hub.CaCertificatePath; ",
        };
        var script = $"$ErrorActionPreference = 'Continue'; Import-Module '{Paths.ModuleManifest().Replace("'", "''", StringComparison.Ordinal)}'; " +
            $"$hub = Start-IoTHubEmulator{(tier is null ? " -ServiceRequestsPerSecond 0" : $" -Tier {tier} -Units {units.ToString(CultureInfo.InvariantCulture)}")}; $svc = $hub | Connect-IoTHubService; " +
            devices + "$watch = [System.Diagnostics.Stopwatch]::StartNew(); " + run +
            "$s = $watch.Elapsed.TotalSeconds; 'RESULT {0} {1} {2}' -f $s.ToString([cultureinfo]::InvariantCulture), @($out).Count, $svc.ThrottledCount; $hub | Stop-IoTHubEmulator";
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { Paths.HostAssembly(), "-NoModule", "-Command", script })
        {
            start.ArgumentList.Add(argument);
        }

        if (azurite is not null)
        {
            start.Environment["AZURE_STORAGE_CONNECTION_STRING"] = azurite.ConnectionString;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().ConfigureAwait(false);
        var line = (await stdout.ConfigureAwait(false)).Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"The host printed no result: {await stderr.ConfigureAwait(false)}");
        var parts = line.Split(' ');
        return (double.Parse(parts[1], CultureInfo.InvariantCulture), count - int.Parse(parts[2], CultureInfo.InvariantCulture), int.Parse(parts[3], CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The least time the tier's quotas allow for the path: registry paths count each device against the identity registry
    /// throttle (a minute's worth at once, then its rate); an import job counts a few jobs operations; DPS its registrations.
    /// </summary>
    private static double QuotaMinimum(string path, int count, IoTHubTier tier, int units)
    {
        var perMinute = path switch
        {
            "import" => double.PositiveInfinity,
            "dps" => 1000.0,
            _ => (tier is IoTHubTier.B3 or IoTHubTier.S3 ? 5000.0 : 100.0) * units,
        };
        return Math.Max(0, count - perMinute) / perMinute * 60;
    }

    private static async Task<(double Seconds, int Failed, int Throttled)> RunPathAsync(string path, int count, int round, IoTHubTier? tier, int units, AzuriteFixture? azurite)
    {
        await using var hub = await IoTHubEmulator.StartAsync(new IoTHubEmulatorOptions { ServiceRequestsPerSecond = 0, Tier = tier, Units = units }).ConfigureAwait(false);
        using var service = new IoTHubServiceClient(new IoTHubServiceOptions
        {
            ConnectionString = hub.OwnerConnectionString, Port = hub.HttpsPort, CaCertificatePath = hub.CaCertificatePath, IsEmulator = true,
        });
        var ids = Enumerable.Range(0, count).Select(i => $"{path}-{round}-{i:D6}").ToList();
        var clock = Stopwatch.StartNew();
        var failed = path switch
        {
            "per-device" => await PerDeviceAsync(service, ids).ConfigureAwait(false),
            "bulk" => await BulkAsync(service, ids).ConfigureAwait(false),
            "import" => await ImportAsync(service, ids, azurite!).ConfigureAwait(false),
            _ => await DpsAsync(hub, ids).ConfigureAwait(false),
        };
        var seconds = clock.Elapsed.TotalSeconds;
        if (hub.DeviceCount != count)
        {
            failed = Math.Max(failed, count - hub.DeviceCount);
        }

        return (seconds, failed, service.ThrottledCount);
    }

    private static async Task<int> PerDeviceAsync(IoTHubServiceClient service, List<string> ids)
    {
        var failed = 0;
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (id, ct) =>
        {
            try
            {
                _ = (await service.CreateDeviceAsync(new DeviceSpec { DeviceId = id }, ct).ConfigureAwait(false)).ConnectionString ?? throw new InvalidOperationException("no key");
            }
            catch (IoTHubMqttException)
            {
                Interlocked.Increment(ref failed);
            }
        }).ConfigureAwait(false);
        return failed;
    }

    private static async Task<int> BulkAsync(IoTHubServiceClient service, List<string> ids)
    {
        using var writer = new DeviceRegistryWriter(service, new DeviceRegistryWriterOptions());
        foreach (var id in ids)
        {
            writer.Add(new DeviceInput { DeviceId = id });
        }

        writer.Complete();
        var failed = 0;
        while (writer.NextTarget is not null)
        {
            await writer.WaitForNextAsync(CancellationToken.None).ConfigureAwait(false);
            failed += writer.TakeReady().Count(o => o.Action != RegistryAction.Created);
        }

        return failed;
    }

    private static async Task<int> ImportAsync(IoTHubServiceClient service, List<string> ids, AzuriteFixture azurite)
    {
        var container = await DeviceBlobContainer.FromConnectionStringAsync(azurite.ConnectionString, AzuriteFixture.NewContainerName("bench"), TimeSpan.FromHours(2)).ConfigureAwait(false);
        using var file = new DeviceFile(RegistryImportMode.Create);
        var row = 0;
        foreach (var id in ids)
        {
            file.Add(new DeviceInput { DeviceId = id }, ++row);
        }

        var result = await RegistryJobs.ImportAsync(service, file, container, container, null).ConfigureAwait(false);
        return result.Failed.Count;
    }

    private static async Task<int> DpsAsync(IoTHubEmulator hub, List<string> ids)
    {
        var groupKey = hub.AddEnrollmentGroup("bench");
        var pacing = new ThrottleGate(TimeProvider.System);
        var failed = 0;
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 128 }, async (id, ct) =>
        {
            try
            {
                await DpsClient.RegisterAssignedAsync(new DpsRegistrationOptions
                {
                    IdScope = hub.IdScope, RegistrationId = id, GroupKey = groupKey, ProvisioningHost = "localhost", Port = hub.DpsPort,
                    CaCertificatePath = hub.CaCertificatePath, Timeout = TimeSpan.FromMinutes(5), Pacing = pacing,
                }, ct).ConfigureAwait(false);
            }
            catch (IoTHubMqttException)
            {
                Interlocked.Increment(ref failed);
            }
        }).ConfigureAwait(false);
        return failed;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
