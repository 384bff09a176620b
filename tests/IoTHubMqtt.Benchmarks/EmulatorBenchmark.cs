using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Benchmarks;

/// <summary>
/// The emulator (a child process, as users run it) against mosquitto as a plain broker, under the same client load:
/// authenticated TLS connections held (and the broker's memory per connection), then QoS 1 telemetry ingest.
/// </summary>
internal static class EmulatorBenchmark
{
    private const string SharedKey = "QmVuY2htYXJrRGV2aWNlS2V5QmVuY2htYXJrRGV2aWM=";
    private const int PayloadBytes = 256;
    private const int InFlightPerPublisher = 4;

    public static async Task<int> RunAsync(BenchmarkArguments args)
    {
        var connections = args.Int("connections", 10_000);
        var publishers = args.Int("publishers", 64);
        var messages = args.Int("messages", 1000);
        var output = args.String("output");
        args.ThrowIfUnknown("emulator");

        var mosquitto = ExternalProcess.Require("mosquitto", "mosquitto");
        var work = Path.Combine(Path.GetTempPath(), "iothubmqtt-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var certs = BenchmarkCertificates.Create(work);
        var trust = new EmulatorTrust(certs.CaPem);
        var payload = new byte[PayloadBytes];
        Random.Shared.NextBytes(payload);
        var results = new List<BrokerResult>();
        try
        {
            Console.WriteLine($"Emulator: starting, creating {connections} devices...");
            using (var emulator = await StartEmulatorAsync(work, certs))
            {
                await CreateDevicesAsync(emulator.HttpsPort, trust, connections);
                results.Add(await MeasureAsync("IoT Hub emulator (MQTT/TLS, SAS checked)", emulator.Pid, emulator.TlsPort, trust, connections, publishers, messages, payload));
            }

            Console.WriteLine("mosquitto: starting...");
            using (var broker = await StartMosquittoAsync(mosquitto, work, certs))
            {
                results.Add(await MeasureAsync($"mosquitto {MosquittoVersion(mosquitto)} (MQTT/TLS, anonymous)", broker.Pid, broker.TlsPort, trust, connections, publishers, messages, payload));
            }
        }
        finally
        {
            try
            {
                Directory.Delete(work, true);
            }
            catch (IOException)
            {
            }
        }

        var table = Render(results, connections, publishers, messages);
        Console.WriteLine();
        Console.WriteLine(table);
        output ??= Path.Combine("BenchmarkResults", $"emulator-{DateTime.UtcNow:yyyyMMdd-HHmmss}.md");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        await File.WriteAllTextAsync(output, table);
        Console.WriteLine($"Written to {Path.GetFullPath(output)}");
        return 0;
    }

    private static async Task<BrokerResult> MeasureAsync(string name, int pid, int port, EmulatorTrust trust, int connections, int publishers, int messages, byte[] payload)
    {
        await Task.Delay(1000);
        var rssBefore = Rss(pid);
        Console.WriteLine($"{name}: opening {connections} connections...");
        var held = new SslStream?[connections];
        var watch = Stopwatch.StartNew();
        var failures = 0;
        await Parallel.ForAsync(0, connections, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
        {
            try
            {
                held[i] = await OpenAsync(port, trust, DeviceId(i), ct);
            }
            catch (Exception ex) when (ex is IOException or SocketException or InvalidDataException or System.Security.Authentication.AuthenticationException or OperationCanceledException)
            {
                Interlocked.Increment(ref failures);
            }
        });
        var connectTime = watch.Elapsed;
        await Task.Delay(2000);
        var alive = held.Count(s => s is not null);
        var rssHeld = Rss(pid);
        Console.WriteLine($"{name}: {alive} held in {connectTime.TotalSeconds:F1} s, RSS {rssBefore / 1024 / 1024} -> {rssHeld / 1024 / 1024} MB");
        foreach (var stream in held)
        {
            stream?.Dispose();
        }

        await Task.Delay(3000);

        Console.WriteLine($"{name}: QoS 1 ingest, {publishers} publishers x {messages} messages...");
        var clients = new List<IMqttClient>();
        for (var p = 0; p < publishers; p++)
        {
            var client = new MqttClientFactory().CreateMqttClient();
            var result = await client.ConnectAsync(Options(port, trust, DeviceId(p)));
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                throw new InvalidOperationException($"Publisher {p} was refused: {result.ResultCode}.");
            }

            clients.Add(client);
        }

        await Publish(clients, 20, payload); // warm-up
        watch.Restart();
        await Publish(clients, messages, payload);
        var ingestTime = watch.Elapsed;
        foreach (var client in clients)
        {
            await client.DisconnectAsync();
            client.Dispose();
        }

        var total = (long)publishers * messages;
        Console.WriteLine($"{name}: {total / ingestTime.TotalSeconds:F0} msgs/s");
        return new BrokerResult(name, connections, alive, connectTime, rssBefore, rssHeld, total, ingestTime);
    }

    private static Task Publish(List<IMqttClient> clients, int perClient, byte[] payload) =>
        Task.WhenAll(clients.Select(async (client, index) =>
        {
            var topic = $"devices/{DeviceId(index)}/messages/events/";
            var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
            var next = -1;
            await Task.WhenAll(Enumerable.Range(0, InFlightPerPublisher).Select(async _ =>
            {
                while (Interlocked.Increment(ref next) < perClient)
                {
                    var result = await client.PublishAsync(message);
                    if (!result.IsSuccess)
                    {
                        throw new InvalidOperationException($"Publish failed: {result.ReasonCode}.");
                    }
                }
            }));
        }));

    private static string DeviceId(int i) => $"bench-{i:D5}";

    private static string Password(string deviceId) =>
        SasToken.CreateForTimeToLive(SasResource.ForDevice("localhost", deviceId), SharedKey, TimeSpan.FromHours(2));

    private static MqttClientOptions Options(int port, EmulatorTrust trust, string deviceId) => new MqttClientOptionsBuilder()
        .WithTcpServer("localhost", port)
        .WithProtocolVersion(MqttProtocolVersion.V311)
        .WithClientId(deviceId)
        .WithCredentials($"localhost/{deviceId}/?api-version=2021-04-12", Password(deviceId))
        .WithKeepAlivePeriod(TimeSpan.FromSeconds(300))
        .WithTimeout(TimeSpan.FromSeconds(30))
        .WithTlsOptions(o => o.UseTls().WithCertificateValidationHandler(e => trust.Validate(e.Certificate, e.SslPolicyErrors)))
        .Build();

    /// <summary>A minimal device: TLS, CONNECT (keep-alive 0, so it may stay silent), CONNACK accepted; then held open.</summary>
    private static async Task<SslStream> OpenAsync(int port, EmulatorTrust trust, string deviceId, CancellationToken cancellationToken)
    {
        var tcp = new TcpClient { NoDelay = true };
        SslStream? ssl = null;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(60));
            await tcp.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
            ssl = new SslStream(tcp.GetStream(), false, (_, cert, _, errors) => trust.Validate(cert, errors));
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" }, timeout.Token);
            await ssl.WriteAsync(RawMqttPackets.Connect(deviceId, $"localhost/{deviceId}/?api-version=2021-04-12", Password(deviceId)), timeout.Token);
            var connAck = new byte[4];
            await ssl.ReadExactlyAsync(connAck, timeout.Token);
            if (connAck[0] != 0x20 || connAck[3] != 0)
            {
                throw new InvalidDataException($"CONNACK return code {connAck[3]}.");
            }

            return ssl;
        }
        catch
        {
            ssl?.Dispose();
            tcp.Dispose();
            throw;
        }
    }

    private static async Task CreateDevicesAsync(int httpsPort, EmulatorTrust trust, int count)
    {
        var ownerToken = SasToken.CreateForTimeToLive("localhost", OwnerKey, TimeSpan.FromHours(2), "iothubowner");
        var clients = Enumerable.Range(0, 8).Select(_ => new ServiceRestClient(httpsPort, trust, ownerToken)).ToArray();
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
        {
            var id = DeviceId(i);
            var body = new JsonObject
            {
                ["deviceId"] = id,
                ["authentication"] = new JsonObject { ["type"] = "sas", ["symmetricKey"] = new JsonObject { ["primaryKey"] = SharedKey, ["secondaryKey"] = SharedKey } },
            };
            var response = await clients[i % clients.Length].SendAsync(HttpMethod.Put, $"devices/{id}", body, cancellationToken: ct);
            if (response.Status != HttpStatusCode.OK)
            {
                throw new InvalidOperationException($"Creating {id} answered {response.Status}.");
            }
        });
        foreach (var client in clients)
        {
            client.Dispose();
        }
    }

    private static readonly string OwnerKey = SharedAccessKeys.Generate();

    private static async Task<ChildBroker> StartEmulatorAsync(string work, BenchmarkCertificates certs)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "IoTHubMqtt.Emulator.dll");
        var secrets = new Dictionary<string, string> { ["IOTHUB_EMULATOR_OWNER_KEY"] = OwnerKey, ["IOTHUB_EMULATOR_CERTIFICATE_PASSWORD"] = "bench" };
        var process = ExternalProcess.Start("dotnet", secrets, dll, "--ephemeral-ports", "--requests-per-second", "0",
            "--data-path", Path.Combine(work, "emulator"), "--certificate", certs.ServerPfx);
        int tls = 0, https = 0;
        while (tls == 0 || https == 0)
        {
            var line = await process.ReadLineAsync(TimeSpan.FromSeconds(60));
            var value = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
            if (line.StartsWith("MQTT/TLS port:", StringComparison.Ordinal))
            {
                tls = int.Parse(value, CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("HTTPS/WS port:", StringComparison.Ordinal))
            {
                https = int.Parse(value, CultureInfo.InvariantCulture);
            }
        }

        return new ChildBroker(process, tls, https);
    }

    private static async Task<ChildBroker> StartMosquittoAsync(string mosquitto, string work, BenchmarkCertificates certs)
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var config = Path.Combine(work, "mosquitto.conf");
        await File.WriteAllTextAsync(config, $"""
            listener {port} 127.0.0.1
            allow_anonymous true
            certfile {certs.ServerPem}
            keyfile {certs.ServerKeyPem}
            max_connections -1
            persistence false
            log_dest none

            """);
        var process = ExternalProcess.Start(mosquitto, "-c", config);
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(IPAddress.Loopback, port);
                break;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }

        return new ChildBroker(process, port, 0);
    }

    private static string MosquittoVersion(string mosquitto)
    {
        using var process = ExternalProcess.Start(mosquitto, "-h");
        var (_, output, error) = process.WaitAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        var text = output + error;
        var marker = text.IndexOf("version ", StringComparison.Ordinal);
        return marker < 0 ? "" : text[(marker + 8)..].Split((char[])[' ', '\n'])[0];
    }

    private static long Rss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }

    private static string Render(List<BrokerResult> results, int connections, int publishers, int messages)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Emulator benchmark, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}.");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Connections: {connections} devices, each TLS + CONNECT with a SAS password, held open. Ingest: {publishers} MQTTnet publishers x {messages} QoS 1 messages of {PayloadBytes} bytes, {InFlightPerPublisher} in flight each.");
        sb.AppendLine();
        sb.AppendLine("| broker | connections held | time to connect | RSS idle | RSS with connections | memory per connection | QoS 1 ingest |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in results)
        {
            var perConnection = r.Held == 0 ? 0 : (r.RssHeld - r.RssBefore) / (double)r.Held / 1024;
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Name} | {r.Held:N0} / {r.Attempted:N0} | {r.ConnectTime.TotalSeconds:F1} s | {r.RssBefore / 1024.0 / 1024:F0} MB | {r.RssHeld / 1024.0 / 1024:F0} MB | {perConnection:F1} KB | {r.Messages / r.IngestTime.TotalSeconds:N0} msgs/s |");
        }

        if (results.Count == 2)
        {
            var ratio = (results[0].Messages / results[0].IngestTime.TotalSeconds) / (results[1].Messages / results[1].IngestTime.TotalSeconds);
            sb.AppendLine();
            sb.AppendLine(CultureInfo.InvariantCulture, $"Emulator ingest rate / mosquitto ingest rate: {ratio:P0} (target: at least 50 %).");
        }

        return sb.ToString();
    }

    private sealed record BrokerResult(string Name, int Attempted, int Held, TimeSpan ConnectTime, long RssBefore, long RssHeld, long Messages, TimeSpan IngestTime);

    private sealed class ChildBroker(RunningProcess process, int tlsPort, int httpsPort) : IDisposable
    {
        public int Pid => process.Id;

        public int TlsPort { get; } = tlsPort;

        public int HttpsPort { get; } = httpsPort;

        public void Dispose() => process.Dispose();
    }
}
