using System.Diagnostics;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Reflection;
using System.Text;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Emulator;
using IoTHubMqtt.Testing;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Benchmarks;

/// <summary>
/// QoS 1 telemetry through the same emulator, same message size and count, side by side:
/// Send-IoTHubMessage from a pipeline in a real PowerShell engine, a raw MQTTnet client with the same in-flight
/// window, and mosquitto_pub -l. Each run uses its own device; rates are messages acknowledged per second. All three
/// send the same wire message: the topic carries the property bag the cmdlet writes for a string body.
/// </summary>
internal static class DeviceTelemetryBenchmark
{
    // What Send-IoTHubMessage puts after messages/events/ for a string body: content type and encoding.
    private const string StringPropertyBag = "$.ct=text%2Fplain&$.ce=utf-8";

    public static async Task<int> RunAsync(BenchmarkArguments args)
    {
        var messages = args.Int("messages", 20_000);
        var size = args.Int("size", 256);
        var window = args.Int("window", 64);
        var rounds = args.Int("rounds", 3);
        var output = args.String("output");
        args.ThrowIfUnknown("telemetry");

        var manifest = ModuleManifest();
        var mosquittoPub = ExternalProcess.Require("mosquitto_pub", "mosquitto-clients");
        var body = new string('x', size);
        await using var emulator = await IoTHubEmulator.StartAsync(new IoTHubEmulatorOptions { ServiceRequestsPerSecond = 0 });
        List<double>[] cpu = [[], []];
        var results = new Dictionary<string, List<double>>
        {
            ["Send-IoTHubMessage (pipeline, PowerShell 7.6 engine)"] = [],
            [$"raw MQTTnet client (QoS 1, window {window})"] = [],
            ["mosquitto_pub -l (QoS 1)"] = [],
        };

        // One warm-up round each (JIT, TLS session setup), then the measured rounds, interleaved.
        for (var round = 0; round <= rounds; round++)
        {
            var cmdlet = RunCmdlet(emulator, manifest, messages, body, window);
            var cmdletCpu = lastCpuPerMessage;
            var raw = await RunRawAsync(emulator, messages, body, window);
            var rawCpu = lastCpuPerMessage;
            var mosquitto = await RunMosquittoAsync(emulator, mosquittoPub, messages, body);
            if (round == 0)
            {
                continue;
            }

            results.ElementAt(0).Value.Add(cmdlet);
            results.ElementAt(1).Value.Add(raw);
            cpu[0].Add(cmdletCpu);
            cpu[1].Add(rawCpu);
            results.ElementAt(2).Value.Add(mosquitto);
            Console.WriteLine($"round {round}: cmdlet {cmdlet:N0}/s ({cmdletCpu:N1} µs CPU/msg), raw {raw:N0}/s ({rawCpu:N1} µs CPU/msg), mosquitto_pub {mosquitto:N0}/s");
        }

        var rawMedian = Median(results.ElementAt(1).Value);
        var table = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"Telemetry, QoS 1, {messages:N0} messages of {size} B to the in-process emulator over MQTT/TLS, median of {rounds} rounds ({Environment.ProcessorCount} cores):")
            .AppendLine()
            .AppendLine("| sender | msgs/s (median) | rounds | vs raw MQTTnet | CPU per message (median, this process) |")
            .AppendLine("| --- | ---: | --- | ---: | ---: |");
        var row = 0;
        foreach (var (name, rates) in results)
        {
            var cpuCell = row < 2 ? $"{Median(cpu[row]):N1} µs" : "— (own process)";
            table.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {Median(rates):N0} | {string.Join(", ", rates.Select(r => r.ToString("N0", CultureInfo.InvariantCulture)))} | {Median(rates) / rawMedian:P0} | {cpuCell} |");
            row++;
        }

        var ratios = results.ElementAt(0).Value.Zip(results.ElementAt(1).Value, (c, r) => c / r).ToList();
        table.AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"Send-IoTHubMessage vs raw MQTTnet round by round (same round, back to back): {string.Join(", ", ratios.Select(r => r.ToString("P0", CultureInfo.InvariantCulture)))}; median {Median(ratios):P0}.")
            .AppendLine()
            .AppendLine("CPU per message is the benchmark process's CPU time (sender and the in-process emulator together) while sending, divided by the messages: less sensitive to other load on the machine than msgs/s.");

        Console.WriteLine();
        Console.WriteLine(table);
        if (output is not null)
        {
            await File.WriteAllTextAsync(output, table.ToString());
        }

        return 0;
    }

    /// <summary>CPU time of this process per message during the last cmdlet or raw run, in microseconds.</summary>
    private static double lastCpuPerMessage;

    private static double RunCmdlet(IoTHubEmulator emulator, string manifest, int messages, string body, int window)
    {
        var device = emulator.CreateDevice("bench-cmdlet-" + Guid.NewGuid().ToString("N")[..6]);
        var state = InitialSessionState.CreateDefault2();
        state.ImportPSModule(manifest);
        using var runspace = RunspaceFactory.CreateRunspace(state);
        runspace.Open();
        using var shell = PowerShell.Create();
        shell.Runspace = runspace;
        shell.AddScript("""
            param($cs, $port, $ca, $count, $body, $window)
            $conn = Connect-IoTHub -ConnectionString $cs -Port $port -CaCertificatePath $ca -MaxInFlight $window
            $data = [string[]]::new($count)
            for ($i = 0; $i -lt $count; $i++) { $data[$i] = $body }
            $self = [Diagnostics.Process]::GetCurrentProcess()
            $cpu = $self.TotalProcessorTime
            $watch = [Diagnostics.Stopwatch]::StartNew()
            $data | Send-IoTHubMessage
            $watch.Stop()
            $self.Refresh()
            ($self.TotalProcessorTime - $cpu).TotalMilliseconds * 1000 / $count
            $conn | Disconnect-IoTHub
            $watch.Elapsed.TotalSeconds
            """)
            .AddArgument(device.ConnectionString).AddArgument(emulator.MqttTlsPort).AddArgument(emulator.CaCertificatePath)
            .AddArgument(messages).AddArgument(body).AddArgument(window);
        var output = shell.Invoke();
        if (shell.HadErrors)
        {
            throw new InvalidOperationException("Send-IoTHubMessage failed: " + string.Join("; ", shell.Streams.Error));
        }

        lastCpuPerMessage = (double)output[^2].BaseObject;
        return messages / (double)output.Last().BaseObject;
    }

    private static async Task<double> RunRawAsync(IoTHubEmulator emulator, int messages, string body, int window)
    {
        var device = emulator.CreateDevice("bench-raw-" + Guid.NewGuid().ToString("N")[..6]);
        var trust = new EmulatorTrust(emulator.CaCertificatePath);
        var token = SasToken.CreateForTimeToLive($"{emulator.HostName}/devices/{device.DeviceId}", device.PrimaryKey!, TimeSpan.FromHours(1));
        using var client = new MqttClientFactory().CreateMqttClient();
        await client.ConnectAsync(new MqttClientOptionsBuilder()
            .WithProtocolVersion(MqttProtocolVersion.V311)
            .WithTcpServer(emulator.HostName, emulator.MqttTlsPort)
            .WithClientId(device.DeviceId)
            .WithCredentials($"{emulator.HostName}/{device.DeviceId}/?api-version=2021-04-12", token)
            .WithTlsOptions(t => t.UseTls().WithTargetHost(emulator.HostName).WithCertificateValidationHandler(e => trust.Validate(e.Certificate, e.SslPolicyErrors)))
            .Build());
        var topic = $"devices/{device.DeviceId}/messages/events/{StringPropertyBag}";
        var payload = Encoding.UTF8.GetBytes(body);
        using var slots = new SemaphoreSlim(window, window);
        var pending = new List<Task>(messages);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < messages; i++)
        {
            await slots.WaitAsync();
            pending.Add(Publish());
        }

        await Task.WhenAll(pending);
        watch.Stop();
        lastCpuPerMessage = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds * 1000 / messages;
        await client.DisconnectAsync();
        return messages / watch.Elapsed.TotalSeconds;

        async Task Publish()
        {
            try
            {
                var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
                await client.PublishAsync(message);
            }
            finally
            {
                slots.Release();
            }
        }
    }

    private static async Task<double> RunMosquittoAsync(IoTHubEmulator emulator, string mosquittoPub, int messages, string body)
    {
        var device = emulator.CreateDevice("bench-mosq-" + Guid.NewGuid().ToString("N")[..6]);
        var token = SasToken.CreateForTimeToLive($"{emulator.HostName}/devices/{device.DeviceId}", device.PrimaryKey!, TimeSpan.FromHours(1));
        var start = new ProcessStartInfo(mosquittoPub)
        {
            RedirectStandardInput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
        {
            "-h", emulator.HostName, "-p", emulator.MqttTlsPort.ToString(CultureInfo.InvariantCulture), "--cafile", emulator.CaCertificatePath,
            "-V", "mqttv311", "-i", device.DeviceId, "-u", $"{emulator.HostName}/{device.DeviceId}/?api-version=2021-04-12", "-P", token,
            "-t", $"devices/{device.DeviceId}/messages/events/{StringPropertyBag}", "-q", "1", "-l",
        })
        {
            start.ArgumentList.Add(argument);
        }

        var lines = new StringBuilder(messages * (body.Length + 1));
        for (var i = 0; i < messages; i++)
        {
            lines.Append(body).Append('\n');
        }

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync(lines.ToString());
        process.StandardInput.Close();
        var errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        watch.Stop();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"mosquitto_pub exited with {process.ExitCode}: {errors}");
        }

        return messages / watch.Elapsed.TotalSeconds;
    }

    private static string ModuleManifest()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "out", "IoTHubMqtt");
            if (Directory.Exists(candidate))
            {
                return Directory.GetFiles(candidate, "IoTHubMqtt.psd1", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Last();
            }
        }

        throw new InvalidOperationException("Build the module first (dotnet build): out/IoTHubMqtt was not found.");
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
