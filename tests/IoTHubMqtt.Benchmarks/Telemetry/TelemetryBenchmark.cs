using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace IoTHubMqtt.Benchmarks.Telemetry;

/// <summary>
/// QoS 1 telemetry to one emulator, side by side: Send-IoTHubMessage (in real pwsh, and in a PowerShell engine hosted
/// by .NET), a raw MQTTnet client, and the official Node.js device SDK, at each message size and device count.
/// Every sender and the hub are processes of their own, started once and driven round by round; in each round every
/// configuration runs once per sender, the senders taking turns in an order that rotates from round to round. Each
/// sender times itself (first send to last acknowledgement) and counts its own CPU time; the hub's CPU time is read
/// around each run.
/// </summary>
internal static class TelemetryBenchmark
{
    private static readonly string[] AllSenders = ["raw", "pwsh", "engine", "node"];

    private static readonly Dictionary<string, string> Titles = new(StringComparer.Ordinal)
    {
        ["raw"] = "raw MQTTnet client",
        ["pwsh"] = "Send-IoTHubMessage in pwsh",
        ["engine"] = "Send-IoTHubMessage in a hosted engine",
        ["node"] = "Node.js device SDK",
    };

    public static async Task<int> RunAsync(BenchmarkArguments args)
    {
        var rounds = args.Int("rounds", 9);
        var sizes = args.Ints("sizes", [64, 1024, 64 * 1024]);
        var deviceCounts = args.Ints("devices", [1, 10, 100]);
        var messages = args.Int("messages", 20_000);
        var megabytes = args.Int("megabytes", 128);
        var window = args.Int("window", 64);
        var senders = (args.String("senders") ?? string.Join(',', AllSenders)).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var pwshPath = args.String("pwsh");
        var output = args.String("output");
        args.ThrowIfUnknown("telemetry");
        if (senders.FirstOrDefault(s => !AllSenders.Contains(s)) is { } unknown)
        {
            throw new ArgumentException($"Unknown sender '{unknown}'; the senders are {string.Join(", ", AllSenders)}.");
        }

        var maxDevices = deviceCounts.Max();
        var configurations = (from size in sizes from devices in deviceCounts select new Configuration(size, devices, MessagesPerDevice(size, devices))).ToList();
        var work = Path.Combine(Path.GetTempPath(), "iothubmqtt-telemetry-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        var self = typeof(TelemetryBenchmark).Assembly.Location;
        var processes = new List<SenderProcess>();
        try
        {
            Console.WriteLine($"Starting the hub and creating {maxDevices} devices a sender...");
            var hub = SenderProcess.Start("hub", "dotnet", [self, TelemetryHubHost.Command, work, string.Join(',', senders), maxDevices.ToString(CultureInfo.InvariantCulture)]);
            processes.Add(hub);
            var hubInfo = await hub.ExpectAsync("HUB", TimeSpan.FromMinutes(5)).ConfigureAwait(false);
            var port = hubInfo[1];
            var ca = string.Join(' ', hubInfo[2..]);

            var running = new Dictionary<string, SenderProcess>(StringComparer.Ordinal);
            var versions = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var name in senders)
            {
                Console.WriteLine($"Starting {Titles[name]} and connecting its {maxDevices} devices...");
                var devicesFile = TelemetryHubHost.DevicesFile(work, name);
                var sender = StartSender(name, devicesFile, port, ca, window, pwshPath);
                processes.Add(sender);
                versions[name] = (await sender.ExpectAsync("READY", TimeSpan.FromMinutes(15)).ConfigureAwait(false)).ElementAtOrDefault(1) ?? "";
                running[name] = sender;
            }

            var samples = new Dictionary<(Configuration Configuration, string Sender), List<Sample>>();
            // Round 0 warms every path up (JIT, TLS, runspaces) and is not counted.
            for (var round = 0; round <= rounds; round++)
            {
                var order = senders.Skip(round % senders.Length).Concat(senders.Take(round % senders.Length)).ToList();
                Console.WriteLine(round == 0 ? $"warm-up round ({string.Join(", ", order)})" : $"round {round} of {rounds} ({string.Join(", ", order)})");
                foreach (var configuration in configurations)
                {
                    var line = new StringBuilder().Append(CultureInfo.InvariantCulture, $"  {Size(configuration.Size),6} x {configuration.Devices,3} devices:");
                    // Every sender's CPU time over the whole configuration (its own run and the others'), read from outside:
                    // what a sender does after its last acknowledgement (or before its first send) counts too.
                    var cpuBefore = order.ToDictionary(name => name, name => running[name].CpuTime, StringComparer.Ordinal);
                    var measured = new Dictionary<string, Sample>(StringComparer.Ordinal);
                    foreach (var name in order)
                    {
                        measured[name] = await MeasureAsync(running[name], hub, configuration).ConfigureAwait(false);
                        line.Append(CultureInfo.InvariantCulture, $" {name} {measured[name].Rate:N0}/s");
                    }

                    foreach (var name in order.Where(_ => round > 0))
                    {
                        var total = configuration.Devices * configuration.MessagesPerDevice;
                        var sample = measured[name] with { WholeCpuPerMessage = (running[name].CpuTime - cpuBefore[name]).TotalSeconds * 1e6 / total };
                        var key = (configuration, name);
                        if (!samples.TryGetValue(key, out var list))
                        {
                            samples[key] = list = [];
                        }

                        list.Add(sample);
                    }

                    Console.WriteLine(line);
                }
            }

            var report = Report(samples, configurations, senders, rounds, window, versions);
            Console.WriteLine();
            Console.WriteLine(report);
            if (output is not null)
            {
                await File.WriteAllTextAsync(output, report).ConfigureAwait(false);
            }

            return 0;
        }
        finally
        {
            foreach (var process in Enumerable.Reverse(processes))
            {
                await process.DisposeAsync().ConfigureAwait(false);
            }

            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        int MessagesPerDevice(int size, int devices) =>
            Math.Max(1, (int)Math.Min(messages, (long)megabytes * 1024 * 1024 / size) / devices);
    }

    private static SenderProcess StartSender(string name, string devicesFile, string port, string ca, int window, string? pwshPath)
    {
        var self = typeof(TelemetryBenchmark).Assembly.Location;
        var windowText = window.ToString(CultureInfo.InvariantCulture);
        switch (name)
        {
            case "raw":
                return SenderProcess.Start(name, "dotnet", [self, RawMqttSender.Command, devicesFile, port, ca, windowText]);
            case "engine":
                return SenderProcess.Start(name, "dotnet", [self, EngineSender.Command, Paths.ModuleManifest(), devicesFile, port, ca, windowText]);
            case "pwsh":
                var (fileName, prefix) = Pwsh(pwshPath);
                return SenderProcess.Start(name, fileName,
                    [.. prefix, "-NoProfile", "-NonInteractive", "-File", Path.Combine(AppContext.BaseDirectory, "Telemetry", "TelemetrySender.ps1"),
                     "-Manifest", Paths.ModuleManifest(), "-DevicesFile", devicesFile, "-Port", port, "-CaCertificatePath", ca, "-Window", windowText]);
            default:
                var interop = Path.Combine(Paths.RepoRoot(), "tests", "interop");
                if (!Directory.Exists(Path.Combine(interop, "node_modules", "azure-iot-device-mqtt")))
                {
                    throw new InvalidOperationException("The Node.js device SDK is not installed: run `npm ci --prefix tests/interop` (or leave node out with --senders).");
                }

                return SenderProcess.Start(name, "node", [Path.Combine(interop, "telemetry-sender.js"), devicesFile, port, ca, windowText], interop);
        }
    }

    /// <summary>
    /// The pwsh to run: --pwsh when given, else the repository's pinned PowerShell tool (`dotnet tool run pwsh`, from
    /// .config/dotnet-tools.json after `dotnet tool restore`), else pwsh on PATH.
    /// </summary>
    private static (string FileName, string[] Prefix) Pwsh(string? given)
    {
        if (given is not null)
        {
            return (given, []);
        }

        var manifest = Path.Combine(Paths.RepoRoot(), ".config", "dotnet-tools.json");
        if (File.Exists(manifest) && File.ReadAllText(manifest).Contains("\"powershell\"", StringComparison.OrdinalIgnoreCase))
        {
            return ("dotnet", ["tool", "run", "pwsh", "--"]);
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            if (File.Exists(Path.Combine(dir, "pwsh")))
            {
                return (Path.Combine(dir, "pwsh"), []);
            }
        }

        throw new InvalidOperationException("pwsh was not found: install the PowerShell 7.6.9 dotnet tool (`dotnet tool restore` with the repository's tool manifest, or `dotnet tool install PowerShell --version 7.6.9 --tool-path <dir>` and --pwsh <dir>/pwsh), or leave pwsh out with --senders.");
    }

    private static async Task<Sample> MeasureAsync(SenderProcess sender, SenderProcess hub, Configuration configuration)
    {
        var hubCpu = hub.CpuTime;
        var result = await sender.RunAsync(configuration.Size, configuration.Devices, configuration.MessagesPerDevice, TimeSpan.FromMinutes(10)).ConfigureAwait(false);
        var hubSeconds = (hub.CpuTime - hubCpu).TotalSeconds;
        var total = configuration.Devices * configuration.MessagesPerDevice;
        if (result.Acknowledged != total)
        {
            throw new InvalidOperationException($"{sender.Name}: {result.Acknowledged} of {total} messages were acknowledged. stderr: {sender.Errors}");
        }

        return new Sample(total / result.Seconds, result.CpuSeconds * 1e6 / total, hubSeconds * 1e6 / total, 0);
    }

    private static string Report(Dictionary<(Configuration, string), List<Sample>> samples, List<Configuration> configurations, string[] senders, int rounds, int window, Dictionary<string, string> versions)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine(c, $"Telemetry, QoS 1 over MQTT/TLS to the emulator (a process of its own), {rounds} rounds after a warm-up, senders in rotating order; {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, {DateTime.UtcNow:yyyy-MM-dd}.");
        text.AppendLine(c, $"Window: {window} messages awaiting their acknowledgement a device, for every sender. Versions: {string.Join(", ", senders.Select(s => $"{s} {versions[s]}"))}.");
        text.AppendLine();
        text.AppendLine("msgs/s: median (min–max) over the rounds. \"vs raw\" / \"vs node\": the median of the round-by-round ratios (same round, same configuration). CPU, run: the CPU time per message the sender counts itself, from its first send to its last acknowledgement, median. CPU, round: the sender process's CPU time per message over the whole configuration in that round (its own run and the other senders' runs, read from outside, with any process it started), median: work a client defers past its last acknowledgement (or does while idle) counts here, so the targets compare this one. Hub: the emulator's CPU time per message during that sender's runs, median.");
        text.AppendLine();
        text.AppendLine("| size | devices | messages | sender | msgs/s | vs raw | vs node | CPU µs/msg, run | CPU µs/msg, round | hub CPU µs/msg |");
        text.AppendLine("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        var targets = new List<string>();
        foreach (var configuration in configurations)
        {
            foreach (var name in senders)
            {
                if (!samples.TryGetValue((configuration, name), out var list))
                {
                    continue;
                }

                var rates = list.Select(s => s.Rate).ToList();
                text.AppendLine(c, $"| {Size(configuration.Size)} | {configuration.Devices} | {configuration.Devices * configuration.MessagesPerDevice:N0} | {Titles[name]} | {Median(rates):N0} ({rates.Min():N0}–{rates.Max():N0}) | {Ratio(configuration, name, "raw")} | {Ratio(configuration, name, "node")} | {Median(list.Select(s => s.CpuPerMessage)):N1} | {Median(list.Select(s => s.WholeCpuPerMessage)):N1} | {Median(list.Select(s => s.HubCpuPerMessage)):N1} |");
            }

            foreach (var cmdlet in new[] { "pwsh", "engine" }.Where(senders.Contains))
            {
                if (senders.Contains("raw"))
                {
                    var vsRaw = RoundRatios(configuration, cmdlet, "raw");
                    targets.Add(string.Create(c, $"- {Size(configuration.Size)} x {configuration.Devices}: {Titles[cmdlet]} vs raw {Median(vsRaw):0.00}x (target ≥ 1.00): {(Median(vsRaw) >= 1.0 ? "met" : "NOT met")}; CPU per message over the round {Median(Cpu(configuration, cmdlet)):N1} vs raw {Median(Cpu(configuration, "raw")):N1} µs (target ≤): {(Median(Cpu(configuration, cmdlet)) <= Median(Cpu(configuration, "raw")) ? "met" : "NOT met")} (in its own run {Median(samples[(configuration, cmdlet)].Select(s => s.CpuPerMessage)):N1} vs {Median(samples[(configuration, "raw")].Select(s => s.CpuPerMessage)):N1} µs)"));
                }

                if (senders.Contains("node"))
                {
                    var vsNode = RoundRatios(configuration, cmdlet, "node");
                    targets.Add(string.Create(c, $"- {Size(configuration.Size)} x {configuration.Devices}: {Titles[cmdlet]} vs node {Median(vsNode):0.00}x (target ≥ 1.50): {(Median(vsNode) >= 1.5 ? "met" : "NOT met")}"));
                }
            }
        }

        if (targets.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("Targets (medians of the round-by-round ratios):");
            text.AppendLine();
            targets.ForEach(t => text.AppendLine(t));
        }

        if (rounds < 9)
        {
            text.AppendLine();
            text.AppendLine(c, $"Only {rounds} rounds: figures for reporting come from at least 9.");
        }

        return text.ToString();

        List<double> RoundRatios(Configuration configuration, string name, string peer) =>
            samples[(configuration, name)].Zip(samples[(configuration, peer)], (a, b) => a.Rate / b.Rate).ToList();

        List<double> Cpu(Configuration configuration, string name) => samples[(configuration, name)].Select(s => s.WholeCpuPerMessage).ToList();

        string Ratio(Configuration configuration, string name, string peer) =>
            name == peer || !samples.ContainsKey((configuration, peer)) ? "" : string.Create(c, $"{Median(RoundRatios(configuration, name, peer)):0.00}x");
    }

    private static string Size(int bytes) => bytes % 1024 == 0 ? $"{bytes / 1024} KB" : $"{bytes} B";

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN
            : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private sealed record Configuration(int Size, int Devices, int MessagesPerDevice);

    private sealed record Sample(double Rate, double CpuPerMessage, double HubCpuPerMessage, double WholeCpuPerMessage);
}
