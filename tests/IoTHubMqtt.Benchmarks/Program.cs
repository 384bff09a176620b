using IoTHubMqtt.Benchmarks;
using IoTHubMqtt.Benchmarks.Telemetry;

// One project, one command, one argument syntax for every benchmark:
// dotnet run -c Release --project tests/IoTHubMqtt.Benchmarks -- <benchmark> [--name value ...]
const string Usage = """
    usage: dotnet run -c Release --project tests/IoTHubMqtt.Benchmarks -- <benchmark> [--name value ...]

      telemetry  [--rounds 9] [--sizes 64,1K,64K] [--devices 1,10,100] [--senders raw,pwsh,engine,node]
                 [--messages 20000] [--megabytes 128] [--window 64] [--pwsh path] [--output file.md]
                 (a run sends --messages, at most --megabytes, shared by the devices; pwsh: the repository's
                 PowerShell tool or pwsh on PATH; node: npm ci --prefix tests/interop)
      emulator   [--connections 10000] [--rounds 9] [--requests 200] [--publishers 64] [--messages 1000] [--output file.md]   (needs mosquitto)
      esp32      [--output file.md]
      fleet      [--devices 1000] [--rounds 9] [--paths per-device,bulk,import,dps] [--tier S1 --units 1] [--cmdlets true] [--output file.md]
      import     [--rounds 15] [--output file.md]
      telemetry-read [--messages 20000] [--devices 8] [--size 256] [--rounds 9] [--output file.md]
      all        each of them in turn with its defaults

    Every option is --name value; an option a benchmark does not know stops the run.
    """;

var benchmarks = new Dictionary<string, Func<BenchmarkArguments, Task<int>>>(StringComparer.Ordinal)
{
    ["import"] = ImportBenchmark.RunAsync,
    ["esp32"] = Esp32FlashBenchmark.RunAsync,
    ["fleet"] = FleetBenchmark.RunAsync,
    ["telemetry"] = TelemetryBenchmark.RunAsync,
    ["emulator"] = EmulatorBenchmark.RunAsync,
    ["telemetry-read"] = TelemetryReadBenchmark.RunAsync,
};

// The telemetry benchmark's own processes: the hub and the C# senders (not for direct use).
switch (args.FirstOrDefault())
{
    case TelemetryHubHost.Command: return await TelemetryHubHost.RunAsync(args[1..]).ConfigureAwait(false);
    case RawMqttSender.Command: return await RawMqttSender.RunAsync(args[1..]).ConfigureAwait(false);
    case EngineSender.Command: return EngineSender.Run(args[1..]);
}

if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine(Usage);
    return args.Length == 0 ? 2 : 0;
}

if (args[0] == "all")
{
    if (args.Length > 1)
    {
        Console.Error.WriteLine("'all' runs every benchmark with its defaults and takes no options.");
        return 2;
    }

    var failed = new List<string>();
    foreach (var (name, run) in benchmarks)
    {
        Console.WriteLine($"## {name}");
        Console.WriteLine();
        if (await RunAsync(name, run, []).ConfigureAwait(false) != 0)
        {
            failed.Add(name);
        }
    }

    if (failed.Count > 0)
    {
        Console.Error.WriteLine($"Failed: {string.Join(", ", failed)}");
    }

    return failed.Count == 0 ? 0 : 1;
}

if (!benchmarks.TryGetValue(args[0], out var benchmark))
{
    Console.Error.WriteLine($"Unknown benchmark '{args[0]}'. Available: {string.Join(", ", benchmarks.Keys)}, all.");
    return 2;
}

return await RunAsync(args[0], benchmark, args[1..]).ConfigureAwait(false);

static async Task<int> RunAsync(string name, Func<BenchmarkArguments, Task<int>> run, string[] rest)
{
    BenchmarkArguments arguments;
    try
    {
        arguments = new BenchmarkArguments(rest);
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"{name}: {e.Message}");
        return 2;
    }

    try
    {
        return await run(arguments).ConfigureAwait(false);
    }
    catch (ArgumentException e) when (e.ParamName is null)
    {
        // Option errors (ThrowIfUnknown, a value that is not a number) say what to fix; nothing else is caught.
        Console.Error.WriteLine($"{name}: {e.Message}");
        return 2;
    }
}
