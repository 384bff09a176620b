using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace IoTHubMqtt.Benchmarks;

/// <summary>
/// Cold Import-Module in real pwsh (the pinned PowerShell 7.6.9 dotnet tool, -NoProfile): every round starts new pwsh
/// processes, so nothing is cached in memory. Measures, interleaved round by round (bare pwsh, empty module, IoTHubMqtt,
/// again): bare pwsh alone (process start to exit); an empty manifest module's Import-Module (what PowerShell's own
/// module machinery costs the first time); IoTHubMqtt's Import-Module timed inside the process, its first command
/// (ConvertFrom-IoTHubConnectionString, which loads the core from the private load context) and the whole process; and
/// which dependencies the import itself loaded.
/// </summary>
internal static class ImportBenchmark
{
    private static readonly string[] Dependencies = ["IoTHubMqtt.Core", "IoTHubMqtt.Emulator", "MQTTnet", "Amqp.Net", "Microsoft.Data.Sqlite", "System.IO.Ports", "Azure.Core", "Azure.Messaging.EventHubs", "Azure.Storage.Blobs", "Microsoft.Azure.Amqp"];

    public static async Task<int> RunAsync(BenchmarkArguments args)
    {
        var rounds = args.Int("rounds", 15);
        var output = args.String("output");
        args.ThrowIfUnknown("import");

        var host = Paths.PwshAssembly();
        var manifest = Paths.ModuleManifest();
        var empty = Path.Combine(Path.GetTempPath(), $"iothubmqtt-import-bench-{Environment.ProcessId}", "EmptyModule");
        Directory.CreateDirectory(empty);
        await File.WriteAllTextAsync(Path.Combine(empty, "EmptyModule.psd1"), "@{ ModuleVersion = '1.0.0'; GUID = '0b5bbad0-6f0e-4c55-9d7e-8d2a1c3b4e5f' }").ConfigureAwait(false);

        const string Timed = "$sw = [System.Diagnostics.Stopwatch]::StartNew(); Import-Module '{0}'; $import = $sw.Elapsed.TotalMilliseconds; ";
        var moduleScript = string.Format(CultureInfo.InvariantCulture, Timed, manifest.Replace("'", "''", StringComparison.Ordinal))
            + "$loaded = @([AppDomain]::CurrentDomain.GetAssemblies().GetName().Name).Where({ $_ -in '" + string.Join("','", Dependencies) + "' }) -join ','; "
            + "$sw.Restart(); $null = ConvertFrom-IoTHubConnectionString 'HostName=bench.azure-devices.net;DeviceId=d1;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAA=='; $first = $sw.Elapsed.TotalMilliseconds; "
            + "'RESULT {0:0.00} {1:0.00} [{2}]' -f $import, $first, $loaded";
        var emptyScript = string.Format(CultureInfo.InvariantCulture, Timed, Path.Combine(empty, "EmptyModule.psd1")) + "'RESULT {0:0.00}' -f $import";

        var hostOnly = new List<double>();
        var emptyImport = new List<double>();
        var import = new List<double>();
        var firstCommand = new List<double>();
        var processWithModule = new List<double>();
        var loadedAtImport = new HashSet<string>(StringComparer.Ordinal);

        // One warm-up of each (disk cache, not the process), then the measured rounds.
        for (var round = -1; round < rounds; round++)
        {
            var (baseTime, _) = await RunHostAsync(host, "$null").ConfigureAwait(false);
            var (_, emptyOut) = await RunHostAsync(host, emptyScript).ConfigureAwait(false);
            var (moduleTime, moduleOut) = await RunHostAsync(host, moduleScript).ConfigureAwait(false);
            if (round < 0)
            {
                continue;
            }

            hostOnly.Add(baseTime);
            emptyImport.Add(Number(emptyOut, 1));
            import.Add(Number(moduleOut, 1));
            firstCommand.Add(Number(moduleOut, 2));
            processWithModule.Add(moduleTime);
            var bracket = moduleOut[(moduleOut.IndexOf('[', StringComparison.Ordinal) + 1)..moduleOut.IndexOf(']', StringComparison.Ordinal)];
            loadedAtImport.UnionWith(bracket.Split(',', StringSplitOptions.RemoveEmptyEntries));
            Console.Error.WriteLine($"round {round + 1}/{rounds}: import {import[^1]:0} ms, first command {firstCommand[^1]:0} ms, process {moduleTime:0} ms (bare pwsh {baseTime:0} ms)");
        }

        var md = new StringBuilder();
        var pwshVersion = new DirectoryInfo(host).Parent?.Parent?.Parent?.Parent?.Parent?.Name;
        md.AppendLine(CultureInfo.InvariantCulture, $"Cold Import-Module in pwsh {pwshVersion}, a new process each time, {rounds} rounds, {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}:");
        md.AppendLine();
        md.AppendLine("| measure | median | min | max |");
        md.AppendLine("| --- | ---: | ---: | ---: |");
        Row(md, "`Import-Module IoTHubMqtt` (timed inside the new process)", import);
        Row(md, "first command after it (`ConvertFrom-IoTHubConnectionString`, loads the core)", firstCommand);
        Row(md, "`Import-Module` of an empty manifest module (PowerShell's own first-import cost)", emptyImport);
        Row(md, "bare pwsh process (start, `-Command $null`, exit)", hostOnly);
        Row(md, "pwsh process that imports IoTHubMqtt and runs the first command", processWithModule);
        md.AppendLine(CultureInfo.InvariantCulture, $"| difference: pwsh with IoTHubMqtt minus bare pwsh (medians) | {Median(processWithModule) - Median(hostOnly):0} ms | | |");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Dependencies loaded by Import-Module itself: {(loadedAtImport.Count == 0 ? "none" : string.Join(", ", loadedAtImport.Order(StringComparer.Ordinal)))}.");
        Console.WriteLine(md.ToString());
        if (output is not null)
        {
            await File.WriteAllTextAsync(output, md.ToString()).ConfigureAwait(false);
        }

        Directory.Delete(Path.GetDirectoryName(empty)!, recursive: true);
        return 0;
    }

    private static void Row(StringBuilder md, string name, List<double> values) =>
        md.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {Median(values):0} ms | {values.Min():0} ms | {values.Max():0} ms |");

    private static double Number(string output, int index) =>
        double.Parse(output.Split(' ', StringSplitOptions.RemoveEmptyEntries)[index], CultureInfo.InvariantCulture);

    /// <summary>Runs pwsh with one command; returns its wall time in ms and its RESULT line.</summary>
    private static async Task<(double Milliseconds, string Result)> RunHostAsync(string pwsh, string command)
    {
        var start = new ProcessStartInfo("dotnet", [pwsh, "-NoProfile", "-NonInteractive", "-Command", command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().ConfigureAwait(false);
        watch.Stop();
        var text = await stdout.ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"pwsh exited with {process.ExitCode}: {text}{await stderr.ConfigureAwait(false)}");
        }

        var line = text.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal)) ?? string.Empty;
        return (watch.Elapsed.TotalMilliseconds, line);
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
