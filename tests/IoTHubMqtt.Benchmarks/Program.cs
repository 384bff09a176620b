using System.Diagnostics;
using IoTHubMqtt.Benchmarks;

// One command for every benchmark:
// dotnet run -c Release --project tests/IoTHubMqtt.Benchmarks -- <emulator|telemetry|esp32|fleet|import|all> [options]
const string Usage = """
    usage: IoTHubMqtt.Benchmarks emulator [--connections 10000] [--publishers 64] [--messages 1000] [--output file.md]
           IoTHubMqtt.Benchmarks telemetry [--messages 20000] [--size 256] [--window 64] [--rounds 3] [--output file.md]
           IoTHubMqtt.Benchmarks esp32 [--write file.md]
           IoTHubMqtt.Benchmarks fleet [devices=1000] [file.md]
           IoTHubMqtt.Benchmarks import [--rounds 15] [--output file.md]
           IoTHubMqtt.Benchmarks all          (each of them in turn with its defaults; emulator needs mosquitto)
    """;
if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine(Usage);
    return args.Length == 0 ? 2 : 0;
}

return args[0] == "all" ? await AllAsync().ConfigureAwait(false) : await RunAsync(args[0], args[1..]).ConfigureAwait(false);

static async Task<int> RunAsync(string name, string[] rest) => name switch
{
    "emulator" => await EmulatorBenchmark.RunAsync(rest).ConfigureAwait(false),
    "telemetry" => await DeviceTelemetryBenchmark.RunAsync(rest).ConfigureAwait(false),
    "import" => await ImportBenchmark.RunAsync(rest).ConfigureAwait(false),
    "esp32" => await ProgramAsync("IoTHubMqtt.Esp32.Benchmarks", rest).ConfigureAwait(false),
    "fleet" => await ProgramAsync("IoTHubMqtt.Fleet.Benchmarks", rest).ConfigureAwait(false),
    _ => Fail(name),
};

static async Task<int> AllAsync()
{
    var failed = new List<string>();
    foreach (var name in new[] { "import", "esp32", "fleet", "telemetry", "emulator" })
    {
        Console.WriteLine($"## {name}");
        Console.WriteLine();
        if (await RunAsync(name, []).ConfigureAwait(false) != 0)
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

// The ESP32 and fleet benchmarks are their own programs (they reference the core directly); run them as they are.
static async Task<int> ProgramAsync(string project, string[] rest)
{
    var start = new ProcessStartInfo("dotnet") { UseShellExecute = false };
    start.ArgumentList.Add(Paths.Benchmark(project));
    foreach (var arg in rest)
    {
        start.ArgumentList.Add(arg);
    }

    using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
    await process.WaitForExitAsync().ConfigureAwait(false);
    return process.ExitCode;
}

static int Fail(string name)
{
    Console.Error.WriteLine($"Unknown benchmark '{name}'. Available: emulator, telemetry, esp32, fleet, import, all.");
    return 2;
}
