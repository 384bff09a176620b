using System.Diagnostics;
using System.Globalization;
using System.Text;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Benchmarks.Telemetry;

/// <summary>
/// The peer every other sender is compared with: a raw MQTTnet client per device, as an application that uses
/// MQTTnet directly would write it — the same TLS, QoS 1, the same wire message (topic and property bag of
/// Send-IoTHubMessage's text body), and a window of publishes awaiting their PUBACK (a semaphore), one
/// PublishAsync per message. The body is a byte array made once per run.
/// </summary>
internal static class RawMqttSender
{
    public const string Command = "telemetry-raw-sender";

    // What Send-IoTHubMessage puts after messages/events/ for a string body: content type and encoding.
    private const string StringPropertyBag = "$.ct=text%2Fplain&$.ce=utf-8";

    /// <summary>Arguments: the devices file, the hub's MQTT/TLS port, its CA file and the window.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var devices = await File.ReadAllLinesAsync(args[0]).ConfigureAwait(false);
        var port = int.Parse(args[1], CultureInfo.InvariantCulture);
        var trust = new EmulatorTrust(args[2]);
        var window = int.Parse(args[3], CultureInfo.InvariantCulture);
        var clients = new List<(IMqttClient Client, string Topic)>();
        foreach (var line in devices.Where(l => l.Length > 0))
        {
            var cs = IoTHubConnectionString.Parse(line.Split('\t', 2)[1]);
            var token = SasToken.CreateForTimeToLive($"{cs.HostName}/devices/{cs.DeviceId}", cs.SharedAccessKey!, TimeSpan.FromHours(12));
            var client = new MqttClientFactory().CreateMqttClient();
            await client.ConnectAsync(new MqttClientOptionsBuilder()
                .WithProtocolVersion(MqttProtocolVersion.V311)
                .WithTcpServer(cs.HostName, port)
                .WithClientId(cs.DeviceId)
                .WithCredentials($"{cs.HostName}/{cs.DeviceId}/?api-version=2021-04-12", token)
                .WithKeepAlivePeriod(TimeSpan.FromSeconds(300))
                .WithTimeout(TimeSpan.FromSeconds(60))
                .WithTlsOptions(t => t.UseTls().WithTargetHost(cs.HostName).WithCertificateValidationHandler(e => trust.Validate(e.Certificate, e.SslPolicyErrors)))
                .Build()).ConfigureAwait(false);
            clients.Add((client, $"devices/{cs.DeviceId}/messages/events/{StringPropertyBag}"));
        }

        await SenderLoop.RunAsync(async (size, count, perDevice) =>
        {
            var payload = Encoding.UTF8.GetBytes(new string('x', size));
            var acknowledged = 0L;
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var watch = Stopwatch.StartNew();
            await Task.WhenAll(clients.Take(count).Select(async c =>
            {
                var sent = await SendAsync(c.Client, c.Topic, payload, perDevice, window).ConfigureAwait(false);
                Interlocked.Add(ref acknowledged, sent);
            })).ConfigureAwait(false);
            watch.Stop();
            return new SenderResult(watch.Elapsed.TotalSeconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds, acknowledged);
        }).ConfigureAwait(false);

        foreach (var (client, _) in clients)
        {
            await client.DisconnectAsync().ConfigureAwait(false);
            client.Dispose();
        }

        return 0;
    }

    private static async Task<int> SendAsync(IMqttClient client, string topic, byte[] payload, int messages, int window)
    {
        using var slots = new SemaphoreSlim(window, window);
        var pending = new List<Task<bool>>(messages);
        for (var i = 0; i < messages; i++)
        {
            await slots.WaitAsync().ConfigureAwait(false);
            pending.Add(Publish());
        }

        var results = await Task.WhenAll(pending).ConfigureAwait(false);
        return results.Count(r => r);

        async Task<bool> Publish()
        {
            try
            {
                var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
                return (await client.PublishAsync(message).ConfigureAwait(false)).IsSuccess;
            }
            finally
            {
                slots.Release();
            }
        }
    }
}

/// <summary>The command loop of the C# senders: READY, then one RESULT line for each RUN line, until input ends.</summary>
internal static class SenderLoop
{
    public static async Task RunAsync(Func<int, int, int, Task<SenderResult>> run)
    {
        Console.WriteLine($"READY MQTTnet-{typeof(MqttClientFactory).Assembly.GetName().Version}");
        while (await Console.In.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts is not ["RUN", _, _, _])
            {
                continue;
            }

            var result = await run(
                int.Parse(parts[1], CultureInfo.InvariantCulture),
                int.Parse(parts[2], CultureInfo.InvariantCulture),
                int.Parse(parts[3], CultureInfo.InvariantCulture)).ConfigureAwait(false);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT {result.Seconds:R} {result.CpuSeconds:R} {result.Acknowledged}"));
        }
    }
}
