using System.Diagnostics;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Text;
using Azure.Messaging.EventHubs;
using Azure.Messaging.EventHubs.Consumer;
using IoTHubMqtt.Emulator;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Benchmarks;

/// <summary>
/// Reading telemetry from the emulator's Event Hub-compatible endpoint, side by side: Receive-IoTHubTelemetry (a
/// pipeline in a real PowerShell engine, through the Event Hubs processor with its checkpoints in memory) against the
/// Event Hubs client for .NET (EventHubConsumerClient.ReadEventsAsync, the way a back end reads every partition) on the
/// same partitions and messages. Each run reads the same N messages from the start of the hub's log in a consumer group
/// of its own, from connecting to the last message; rounds interleave the two (A B A B ...), after one warm-up of each.
/// </summary>
internal static class TelemetryReadBenchmark
{
    public static async Task<int> RunAsync(BenchmarkArguments args)
    {
        var messages = args.Int("messages", 20_000);
        var devices = args.Int("devices", 8);
        var size = args.Int("size", 256);
        var rounds = args.Int("rounds", 9);
        var output = args.String("output");
        args.ThrowIfUnknown("telemetry-read");

        var started = DateTimeOffset.UtcNow;
        var loadAtStart = LoadAverage();
        await using var emulator = await IoTHubEmulator.StartAsync(new IoTHubEmulatorOptions { ServiceRequestsPerSecond = 0, TelemetryRetention = Math.Max(100_000, messages) });
        await SendAsync(emulator, messages, devices, size);
        var trust = new EmulatorTrust(emulator.CaCertificatePath);
        var manifest = Paths.ModuleManifest();

        var cmdlet = new List<double>();
        var client = new List<double>();
        for (var round = 0; round <= rounds; round++)
        {
            var a = RunCmdlet(emulator, manifest, messages, $"bench-cmdlet-{round}");
            var b = await RunClientAsync(emulator, trust, messages, $"bench-client-{round}");
            if (round == 0)
            {
                continue; // warm-up
            }

            cmdlet.Add(a);
            client.Add(b);
            Console.WriteLine($"round {round}: Receive-IoTHubTelemetry {a:N0}/s, EventHubConsumerClient {b:N0}/s");
        }

        var ratios = cmdlet.Zip(client, (c, e) => c / e).ToList();
        var table = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"Reading {messages:N0} telemetry messages of {size} B ({devices} devices over the emulator's {emulator.Hub.PartitionCount} partitions) from the Event Hub-compatible endpoint, each run from connecting to the last message, {rounds} interleaved rounds ({Environment.ProcessorCount} cores, .NET {Environment.Version}, {started:yyyy-MM-dd HH:mm} UTC, load average {loadAtStart} at the start and {LoadAverage()} at the end):")
            .AppendLine()
            .AppendLine("| reader | msgs/s (median) | min | max | vs Event Hubs client |")
            .AppendLine("| --- | ---: | ---: | ---: | ---: |")
            .AppendLine(CultureInfo.InvariantCulture, $"| Receive-IoTHubTelemetry -Count {messages} (pipeline to Out-Null, PowerShell 7.6 engine) | {Median(cmdlet):N0} | {cmdlet.Min():N0} | {cmdlet.Max():N0} | {Median(cmdlet) / Median(client):P0} |")
            .AppendLine(CultureInfo.InvariantCulture, $"| EventHubConsumerClient.ReadEventsAsync (Azure.Messaging.EventHubs 5.12.2) | {Median(client):N0} | {client.Min():N0} | {client.Max():N0} | 100 % |")
            .AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"Receive-IoTHubTelemetry vs the client round by round: {string.Join(", ", ratios.Select(r => r.ToString("P0", CultureInfo.InvariantCulture)))}; median {Median(ratios):P0}.");

        Console.WriteLine();
        Console.WriteLine(table);
        if (output is not null)
        {
            await File.WriteAllTextAsync(output, table.ToString());
        }

        return 0;
    }

    /// <summary>The devices send <paramref name="messages"/> between them over MQTT (QoS 1), so that every partition holds some.</summary>
    private static async Task SendAsync(IoTHubEmulator emulator, int messages, int devices, int size)
    {
        var body = new string('x', size);
        var perDevice = (messages + devices - 1) / devices;
        var sent = 0;
        foreach (var id in TelemetryPartitions.DeviceIdsCovering("bench-read", Math.Max(1, devices / emulator.Hub.PartitionCount), emulator.Hub.PartitionCount).Take(devices))
        {
            var device = emulator.CreateDevice(id);
            await using var mqtt = await MqttTestDevice.ConnectAsync(emulator, id, device.PrimaryKey!);
            var count = Math.Min(perDevice, messages - sent);
            var inFlight = new List<Task>();
            for (var i = 0; i < count; i++)
            {
                inFlight.Add(mqtt.PublishAsync($"devices/{id}/messages/events/", body));
                if (inFlight.Count == 64)
                {
                    await Task.WhenAll(inFlight);
                    inFlight.Clear();
                }
            }

            await Task.WhenAll(inFlight);
            sent += count;
        }
    }

    private static double RunCmdlet(IoTHubEmulator emulator, string manifest, int messages, string group)
    {
        var state = InitialSessionState.CreateDefault2();
        state.ImportPSModule(manifest);
        using var runspace = RunspaceFactory.CreateRunspace(state);
        runspace.Open();
        using var shell = PowerShell.Create();
        shell.Runspace = runspace;
        shell.AddScript("""
            param($cs, $port, $ca, $count, $group)
            $watch = [Diagnostics.Stopwatch]::StartNew()
            Receive-IoTHubTelemetry -ConnectionString $cs -Port $port -CaCertificatePath $ca -ConsumerGroup $group -Count $count -Timeout 600 | Out-Null
            $watch.Elapsed.TotalSeconds
            """)
            .AddArgument(emulator.OwnerConnectionString).AddArgument(emulator.HttpsPort).AddArgument(emulator.CaCertificatePath)
            .AddArgument(messages).AddArgument(group);
        var output = shell.Invoke();
        if (shell.HadErrors)
        {
            throw new InvalidOperationException("Receive-IoTHubTelemetry failed: " + string.Join("; ", shell.Streams.Error));
        }

        return messages / (double)output.Last().BaseObject;
    }

    private static async Task<double> RunClientAsync(IoTHubEmulator emulator, EmulatorTrust trust, int messages, string group)
    {
        var watch = Stopwatch.StartNew();
        await using var consumer = new EventHubConsumerClient(group, emulator.EventHubConnectionString!, new EventHubConsumerClientOptions
        {
            ConnectionOptions = new EventHubConnectionOptions
            {
                CustomEndpointAddress = new Uri($"amqps://{emulator.HostName}:{emulator.AmqpPort}"),
                CertificateValidationCallback = (_, certificate, _, errors) => trust.Validate(certificate, errors),
            },
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var read = 0;
        await foreach (var e in consumer.ReadEventsAsync(startReadingAtEarliestEvent: true, new ReadEventOptions { MaximumWaitTime = TimeSpan.FromSeconds(5) }, timeout.Token))
        {
            if (e.Data is not null && ++read == messages)
            {
                break;
            }
        }

        return messages / watch.Elapsed.TotalSeconds;
    }

    /// <summary>The 1, 5 and 15 minute load averages (Linux), to say how busy the machine was.</summary>
    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
