using IoTHubMqtt.Benchmarks;

// dotnet run -c Release --project tests/IoTHubMqtt.Benchmarks -- emulator [--connections N] [--publishers P] [--messages M] [--output FILE]
// dotnet run -c Release --project tests/IoTHubMqtt.Benchmarks -- telemetry [--messages N] [--size BYTES] [--window W] [--rounds R] [--output FILE]
if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine("usage: IoTHubMqtt.Benchmarks emulator [--connections 10000] [--publishers 64] [--messages 1000] [--output file.md]");
    Console.WriteLine("       IoTHubMqtt.Benchmarks telemetry [--messages 20000] [--size 256] [--window 64] [--rounds 3] [--output file.md]");
    return args.Length == 0 ? 2 : 0;
}

return args[0] switch
{
    "emulator" => await EmulatorBenchmark.RunAsync(args[1..]).ConfigureAwait(false),
    "telemetry" => await DeviceTelemetryBenchmark.RunAsync(args[1..]).ConfigureAwait(false),
    _ => Fail(args[0]),
};

static int Fail(string name)
{
    Console.Error.WriteLine($"Unknown benchmark '{name}'. Available: emulator, telemetry.");
    return 2;
}
