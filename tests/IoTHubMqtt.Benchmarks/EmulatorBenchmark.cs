using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Benchmarks;

/// <summary>
/// The emulator (a child process, as users run it), in two parts, each in interleaved rounds after one warm-up round:
/// <list type="number">
/// <item>REST latency on loopback: one HttpClient (keep-alive, TLS) sends requests one after another; per round the
/// median of each kind. Rounds interleave a twin read, a twin patch (written to disk before it is answered) and, as the
/// floor, the same HttpClient against a minimal HTTPS responder in the benchmark process that answers 200 without parsing.</item>
/// <item>Devices held and ingest, against mosquitto as a plain broker under the same client load: per round a fresh
/// emulator and a fresh mosquitto (generated configuration, TLS from the
/// same test CA, a free loopback port) each get N authenticated TLS connections held open (resident memory before and
/// with them, per connection), then QoS 1 telemetry ingest; A B A B ... The emulator runs as Start-IoTHubEmulator does
/// by default, its state in memory (the devices are created over REST before its idle size is read), like mosquitto
/// with persistence off.</item>
/// </list>
/// </summary>
internal static class EmulatorBenchmark
{
    private const string SharedKey = "QmVuY2htYXJrRGV2aWNlS2V5QmVuY2htYXJrRGV2aWM=";
    private const int PayloadBytes = 256;
    private const int InFlightPerPublisher = 4;
    private static readonly string OwnerKey = SharedAccessKeys.Generate();

    public static async Task<int> RunAsync(BenchmarkArguments args)
    {
        var connections = args.Int("connections", 10_000);
        var rounds = args.Int("rounds", 9);
        var requests = args.Int("requests", 200);
        var publishers = args.Int("publishers", 64);
        var messages = args.Int("messages", 1000);
        var output = args.String("output");
        args.ThrowIfUnknown("emulator");

        var mosquitto = ExternalProcess.Require("mosquitto", "mosquitto");
        var mosquittoName = $"mosquitto {MosquittoVersion(mosquitto)}";
        var work = Path.Combine(Path.GetTempPath(), "iothubmqtt-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var certs = BenchmarkCertificates.Create(work);
        var trust = new EmulatorTrust(certs.CaPem);
        var payload = new byte[PayloadBytes];
        Random.Shared.NextBytes(payload);
        var started = DateTime.UtcNow;
        var devices = Math.Max(connections, publishers);
        var rest = new Dictionary<string, List<RoundLatency>>(StringComparer.Ordinal);
        var held = new Dictionary<string, List<RoundHeld>>(StringComparer.Ordinal);
        try
        {
            Console.WriteLine($"Emulator: starting, creating {devices} devices...");
            using (var emulator = await StartEmulatorAsync(work, certs))
            {
                await CreateDevicesAsync(emulator.HttpsPort, trust, devices);
                using var floor = new MinimalHttpsResponder(certs.ServerPfx);
                await MeasureRestAsync(emulator.HttpsPort, floor.Port, trust, rounds, requests, rest);
            }

            for (var round = 0; round <= rounds; round++)
            {
                using (var emulator = await StartEmulatorAsync(work, certs))
                {
                    await CreateDevicesAsync(emulator.HttpsPort, trust, devices);
                    Add(held, EmulatorName, round, await MeasureHeldAsync(EmulatorName, round, emulator, emulator.TlsPort, trust, connections, publishers, messages, payload));
                }

                using (var broker = await StartMosquittoAsync(mosquitto, work, certs))
                {
                    Add(held, mosquittoName, round, await MeasureHeldAsync(mosquittoName, round, broker, broker.TlsPort, trust, connections, publishers, messages, payload));
                }
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

        var table = Render(rest, held, started, rounds, requests, connections, publishers, messages);
        Console.WriteLine();
        Console.WriteLine(table);
        output ??= Path.Combine("BenchmarkResults", $"emulator-{DateTime.UtcNow:yyyyMMdd-HHmmss}.md");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        await File.WriteAllTextAsync(output, table);
        Console.WriteLine($"Written to {Path.GetFullPath(output)}");
        return 0;
    }

    private const string EmulatorName = "IoT Hub emulator (MQTT/TLS, SAS checked)";

    private static void Add<T>(Dictionary<string, List<T>> results, string name, int round, T value)
    {
        if (round == 0)
        {
            return; // warm-up
        }

        if (!results.TryGetValue(name, out var list))
        {
            results[name] = list = [];
        }

        list.Add(value);
    }

    private static async Task MeasureRestAsync(int httpsPort, int floorPort, EmulatorTrust trust, int rounds, int requests, Dictionary<string, List<RoundLatency>> results)
    {
        var ownerToken = SasToken.CreateForTimeToLive("localhost", OwnerKey, TimeSpan.FromHours(2), "iothubowner");
        using var emulator = new ServiceRestClient(httpsPort, trust, ownerToken);
        using var floor = new ServiceRestClient(floorPort, trust, ownerToken);
        var id = DeviceId(0);
        var patch = 0;
        var kinds = new (string Name, Func<Task<HttpStatusCode>> Send)[]
        {
            ("emulator: GET /twins/{id} (twin read)", async () => (await emulator.SendAsync(HttpMethod.Get, $"twins/{id}")).Status),
            ("emulator: PATCH /twins/{id} (desired property, on disk before the answer)", async () =>
                (await emulator.SendAsync(HttpMethod.Patch, $"twins/{id}", new JsonObject { ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["n"] = ++patch } } })).Status),
            ("floor: minimal HTTPS responder, GET (same client, answers 200 without parsing)", async () => (await floor.SendAsync(HttpMethod.Get, $"twins/{id}")).Status),
        };
        for (var round = 0; round <= rounds; round++)
        {
            var line = new StringBuilder().Append(CultureInfo.InvariantCulture, $"REST round {round}{(round == 0 ? " (warm-up)" : "")}:");
            foreach (var (name, send) in kinds)
            {
                var latencies = new double[requests];
                for (var i = 0; i < requests; i++)
                {
                    var watch = Stopwatch.StartNew();
                    var status = await send();
                    latencies[i] = watch.Elapsed.TotalMilliseconds;
                    if (status != HttpStatusCode.OK)
                    {
                        throw new InvalidOperationException($"{name} answered {status}.");
                    }
                }

                var measured = new RoundLatency(Median(latencies), Percentile(latencies, 0.99));
                line.Append(CultureInfo.InvariantCulture, $" {name.Split(' ')[0]} {name.Split(' ')[1]} median {measured.Median:F2} ms;");
                Add(results, name, round, measured);
            }

            Console.WriteLine(line);
        }
    }

    private static async Task<RoundHeld> MeasureHeldAsync(string name, int round, ChildBroker broker, int port, EmulatorTrust trust, int connections, int publishers, int messages, byte[] payload)
    {
        await Task.Delay(1000); // let the broker finish starting before its idle size is read
        var pid = broker.Pid;
        var rssBefore = Rss(pid);
        var held = new SslStream?[connections];
        var watch = Stopwatch.StartNew();
        await Parallel.ForAsync(0, connections, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
        {
            try
            {
                held[i] = await OpenAsync(port, trust, DeviceId(i), ct);
            }
            catch (Exception ex) when (ex is IOException or SocketException or InvalidDataException or System.Security.Authentication.AuthenticationException or OperationCanceledException)
            {
            }
        });
        var connectTime = watch.Elapsed;
        await Task.Delay(2000); // the broker's last CONNACKs are written; its size is read with every connection idle
        var alive = held.Count(s => s is not null);
        var rssHeld = Rss(pid);
        foreach (var stream in held)
        {
            stream?.Dispose();
        }

        var clients = new List<IMqttClient>();
        for (var p = 0; p < publishers; p++)
        {
            var client = new MqttClientFactory().CreateMqttClient();
            var result = await client.ConnectAsync(Options(port, trust, DeviceId(p)));
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                throw new InvalidOperationException($"Publisher {p} was refused by {name}: {result.ResultCode}. Its log:{Environment.NewLine}{await broker.LogAsync()}");
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

        var measured = new RoundHeld(connections, alive, connectTime, rssBefore, rssHeld, (long)publishers * messages / ingestTime.TotalSeconds);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"round {round}{(round == 0 ? " (warm-up)" : "")}, {name}: {alive} of {connections} held in {connectTime.TotalSeconds:F1} s, RSS {rssBefore / 1048576.0:F0} -> {rssHeld / 1048576.0:F0} MB, {measured.PerConnectionKb:F1} KB per connection; ingest {measured.IngestRate:F0} msgs/s"));
        return measured;
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

    private static async Task<ChildBroker> StartEmulatorAsync(string work, BenchmarkCertificates certs)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "IoTHubMqtt.Emulator.dll");
        var secrets = new Dictionary<string, string> { ["IOTHUB_EMULATOR_OWNER_KEY"] = OwnerKey, ["IOTHUB_EMULATOR_CERTIFICATE_PASSWORD"] = "bench" };
        var process = ExternalProcess.Start("dotnet", secrets, dll, "--ephemeral-ports", "--requests-per-second", "0",
            "--data-path", Path.Combine(work, "emulator"), "--certificate", certs.ServerPfx);
        int tls = 0, https = 0;
        while (tls == 0 || https == 0)
        {
            var line = await process.ReadLineAsync(TimeSpan.FromSeconds(120));
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

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static double Percentile(IEnumerable<double> values, double fraction)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(fraction * sorted.Count) - 1)];
    }

    private static string Render(Dictionary<string, List<RoundLatency>> rest, Dictionary<string, List<RoundHeld>> held, DateTime started, int rounds, int requests, int connections, int publishers, int messages)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Emulator benchmark, {started:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, load average at the end {LoadAverage()}.");
        sb.AppendLine(CultureInfo.InvariantCulture, $"{rounds} rounds, interleaved (A B A B ...), after one warm-up round. Medians and ranges are over the rounds' values.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"REST latency on loopback (HttpClient, one keep-alive TLS connection, {requests} requests one after another per kind and round; target: median under 2 ms):");
        sb.AppendLine();
        sb.AppendLine("| requests | median | range of round medians | p99 (median of rounds) |");
        sb.AppendLine("| --- | ---: | ---: | ---: |");
        foreach (var (name, values) in rest)
        {
            var medians = values.Select(v => v.Median).ToList();
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {Median(medians):F2} ms | {medians.Min():F2} – {medians.Max():F2} ms | {Median(values.Select(v => v.P99)):F2} ms |");
        }

        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Devices held: {connections:N0} per round, each TLS + CONNECT with a SAS password, held open; memory per connection = (resident set with them - resident set idle) / connections held (target for the emulator: at most 20 KB). Ingest: {publishers} MQTTnet publishers x {messages:N0} QoS 1 messages of {PayloadBytes} bytes, {InFlightPerPublisher} in flight each.");
        sb.AppendLine();
        sb.AppendLine("| broker | connections held (fewest) | time to connect (median) | RSS idle (median) | RSS with connections (median) | memory per connection, median | range | QoS 1 ingest, median | range |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var (name, values) in held)
        {
            var perConnection = values.Select(v => v.PerConnectionKb).ToList();
            var ingest = values.Select(v => v.IngestRate).ToList();
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {name} | {values.Min(v => v.Held):N0} / {connections:N0} | {Median(values.Select(v => v.ConnectTime.TotalSeconds)):F1} s | {Median(values.Select(v => v.RssBefore / 1048576.0)):F0} MB | {Median(values.Select(v => v.RssHeld / 1048576.0)):F0} MB | {Median(perConnection):F1} KB | {perConnection.Min():F1} – {perConnection.Max():F1} KB | {Median(ingest):N0} msgs/s | {ingest.Min():N0} – {ingest.Max():N0} |");
        }

        if (held.Count == 2)
        {
            var pairs = held.Values.First().Zip(held.Values.Last(), (a, b) => a.IngestRate / b.IngestRate).ToList();
            sb.AppendLine();
            sb.AppendLine(CultureInfo.InvariantCulture, $"Emulator ingest / mosquitto ingest, round by round: {string.Join(", ", pairs.Select(r => r.ToString("P0", CultureInfo.InvariantCulture)))}; median {Median(pairs):P0}.");
        }

        return sb.ToString();
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private sealed record RoundLatency(double Median, double P99);

    private sealed record RoundHeld(int Attempted, int Held, TimeSpan ConnectTime, long RssBefore, long RssHeld, double IngestRate)
    {
        public double PerConnectionKb => Held == 0 ? 0 : (RssHeld - RssBefore) / (double)Held / 1024;
    }

    private sealed class ChildBroker(RunningProcess process, int tlsPort, int httpsPort) : IDisposable
    {
        public int Pid => process.Id;

        /// <summary>What the broker printed since its start-up lines (standard output, then standard error).</summary>
        public async Task<string> LogAsync()
        {
            var lines = new StringBuilder();
            try
            {
                while (true)
                {
                    lines.AppendLine(await process.ReadLineAsync(TimeSpan.FromMilliseconds(200)));
                }
            }
            catch (TimeoutException)
            {
            }

            return lines.Append(process.Error).ToString();
        }

        public int TlsPort { get; } = tlsPort;

        public int HttpsPort { get; } = httpsPort;

        public void Dispose() => process.Dispose();
    }

    /// <summary>
    /// The floor for REST latency: TLS on loopback with the benchmark's certificate, each request's head (and body, by its
    /// Content-Length) read and answered with a fixed 200 in one write, TCP_NODELAY on. What any HTTPS server costs here.
    /// </summary>
    private sealed class MinimalHttpsResponder : IDisposable
    {
        private static readonly byte[] Response = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
        private readonly TcpListener listener = new(IPAddress.Loopback, 0);
        private readonly X509Certificate2 certificate;
        private readonly CancellationTokenSource stop = new();

        public MinimalHttpsResponder(string pfx)
        {
            certificate = X509CertificateLoader.LoadPkcs12FromFile(pfx, "bench");
            listener.Start();
            Port = ((IPEndPoint)listener.LocalEndpoint).Port;
            _ = Task.Run(AcceptAsync);
        }

        public int Port { get; }

        public void Dispose()
        {
            stop.Cancel();
            listener.Stop();
            certificate.Dispose();
            stop.Dispose();
        }

        private async Task AcceptAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                Socket socket;
                try
                {
                    socket = await listener.AcceptSocketAsync(stop.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
                {
                    return;
                }

                _ = Task.Run(() => ServeAsync(socket));
            }
        }

        private async Task ServeAsync(Socket socket)
        {
            socket.NoDelay = true;
            await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true));
            try
            {
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }, stop.Token);
                var buffer = new byte[16 * 1024];
                var filled = 0;
                while (true)
                {
                    var read = await ssl.ReadAsync(buffer.AsMemory(filled), stop.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    filled += read;
                    int end;
                    while ((end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) >= 0)
                    {
                        var head = Encoding.ASCII.GetString(buffer, 0, end);
                        var length = 0;
                        foreach (var headerLine in head.Split("\r\n"))
                        {
                            if (headerLine.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                            {
                                length = int.Parse(headerLine[15..].Trim(), CultureInfo.InvariantCulture);
                            }
                        }

                        var total = end + 4 + length;
                        while (filled < total)
                        {
                            var more = await ssl.ReadAsync(buffer.AsMemory(filled), stop.Token);
                            if (more == 0)
                            {
                                return;
                            }

                            filled += more;
                        }

                        await ssl.WriteAsync(Response, stop.Token);
                        Buffer.BlockCopy(buffer, total, buffer, 0, filled - total);
                        filled -= total;
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
            {
            }
        }
    }
}
