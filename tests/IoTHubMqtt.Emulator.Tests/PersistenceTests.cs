using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>State in <c>-DataPath</c> survives a restart and a kill: devices, keys, twins, undelivered C2D, telemetry.</summary>
public sealed class PersistenceTests : IDisposable
{
    private readonly string dataPath = Path.Combine(Path.GetTempPath(), "iothubmqtt-persist-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(dataPath, true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task Restart_InProcess_KeepsDevicesTwinsAndUndeliveredMessages()
    {
        string id, key, owner;
        await using (var first = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }))
        {
            (id, key) = first.CreateDevice("kept");
            owner = first.Emulator.OwnerConnectionString;
            await first.Service.SendAsync(HttpMethod.Patch, $"twins/{id}", new JsonObject { ["tags"] = new JsonObject { ["room"] = "12" }, ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["rate"] = 5 } } });
            await using var device = await MqttTestDevice.ConnectAsync(first.Emulator, id, key);
            await device.SubscribeAsync("$iothub/twin/res/#");
            await device.PublishAsync("$iothub/twin/PATCH/properties/reported/?$rid=1", """{"fw":"2.1"}""");
            await device.ReceiveAsync("$iothub/twin/res/204/");
            await device.PublishAsync($"devices/{id}/messages/events/", "t1");
            await device.PublishAsync($"devices/{id}/messages/events/", "t2");
            Assert.Equal(HttpStatusCode.OK, (await first.Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("survive"))).Status);
        }

        await using var second = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; });
        Assert.Equal(owner, second.Emulator.OwnerConnectionString);
        var twin = await second.Service.SendAsync(HttpMethod.Get, $"twins/{id}");
        Assert.Equal(HttpStatusCode.OK, twin.Status);
        Assert.Equal("12", twin.Json!["tags"]!["room"]!.GetValue<string>());
        Assert.Equal(5, twin.Json["properties"]!["desired"]!["rate"]!.GetValue<int>());
        Assert.Equal("2.1", twin.Json["properties"]!["reported"]!["fw"]!.GetValue<string>());
        await using var again = await MqttTestDevice.ConnectAsync(second.Emulator, id, key);
        await again.SubscribeAsync($"devices/{id}/messages/devicebound/#");
        Assert.Equal("survive", MqttTestDevice.Text(await again.ReceiveAsync($"devices/{id}/messages/devicebound/")));

        // Telemetry keeps its numbers, hub-wide and within its partition, and goes on from them.
        await again.PublishAsync($"devices/{id}/messages/events/", "t3");
        var telemetry = new List<IoTHubMqtt.Emulator.Hub.TelemetryMessage>();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (telemetry.Count < 3 && DateTime.UtcNow < deadline)
        {
            telemetry = [.. await second.Emulator.Hub.Telemetry.ReadAsync(0, 10, id, TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken)];
        }

        Assert.Equal(["t1", "t2", "t3"], telemetry.Select(m => Encoding.UTF8.GetString(m.Body)));
        Assert.Equal([1L, 2, 3], telemetry.Select(m => m.PartitionSequenceNumber));
        Assert.Equal(telemetry.Select(m => m.SequenceNumber).Order(), telemetry.Select(m => m.SequenceNumber));
    }

    [Fact]
    public async Task Kill_ChildProcess_LosesNothingAcknowledged()
    {
        var ownerKey = SharedAccessKeys.Generate();
        string id, key;
        using (var first = await ChildEmulator.StartAsync(dataPath, ownerKey))
        {
            using var service = first.Service();
            id = "killed-" + Guid.NewGuid().ToString("N")[..6];
            var created = await service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id });
            Assert.Equal(HttpStatusCode.OK, created.Status);
            key = created.Json!["authentication"]!["symmetricKey"]!["primaryKey"]!.GetValue<string>();
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes($"c2d-{i}"))).Status);
            }

            await using var device = await MqttTestDevice.ConnectAsync(first.Options(id, key).Build(), id);
            await device.SubscribeAsync("$iothub/twin/res/#");
            await device.PublishAsync("$iothub/twin/PATCH/properties/reported/?$rid=1", """{"state":"before-kill"}""");
            await device.ReceiveAsync("$iothub/twin/res/204/");
            Assert.True((await device.PublishAsync($"devices/{id}/messages/events/", "acked telemetry")).IsSuccess);
            first.Kill();
        }

        using var second = await ChildEmulator.StartAsync(dataPath, ownerKey);
        using var service2 = second.Service();
        var twin = await service2.SendAsync(HttpMethod.Get, $"twins/{id}");
        Assert.Equal("before-kill", twin.Json!["properties"]!["reported"]!["state"]!.GetValue<string>());
        var telemetry = await service2.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={id}&timeout=2");
        Assert.Equal("acked telemetry", Encoding.UTF8.GetString(Convert.FromBase64String(Assert.Single(telemetry.Json!["messages"]!.AsArray())!["body"]!.GetValue<string>())));
        await using var again = await MqttTestDevice.ConnectAsync(second.Options(id, key).Build(), id);
        await again.SubscribeAsync($"devices/{id}/messages/devicebound/#");
        var bodies = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            bodies.Add(MqttTestDevice.Text(await again.ReceiveAsync($"devices/{id}/messages/devicebound/")));
        }

        Assert.Equal(["c2d-0", "c2d-1", "c2d-2"], bodies);
    }

    /// <summary>The emulator executable in a child process on ephemeral ports, so it can be killed.</summary>
    private sealed class ChildEmulator : IDisposable
    {
        private readonly RunningProcess process;
        private readonly string ownerKey;

        private ChildEmulator(RunningProcess process, string ownerKey, int tls, int https, string ca)
        {
            this.process = process;
            this.ownerKey = ownerKey;
            TlsPort = tls;
            HttpsPort = https;
            CaPath = ca;
        }

        public int TlsPort { get; }

        public int HttpsPort { get; }

        public string CaPath { get; }

        public static async Task<ChildEmulator> StartAsync(string dataPath, string ownerKey)
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "IoTHubMqtt.Emulator.dll");
            var dotnet = Environment.ProcessPath!.EndsWith("dotnet", StringComparison.Ordinal) ? Environment.ProcessPath : "dotnet";
            var process = ExternalProcess.Start(dotnet, dll, "--ephemeral-ports", "--persist", "--data-path", dataPath, "--owner-key", ownerKey);
            int tls = 0, https = 0;
            string? ca = null;
            while (tls == 0 || https == 0 || ca is null)
            {
                var line = await process.ReadLineAsync(TimeSpan.FromSeconds(30));
                var value = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
                if (line.StartsWith("MQTT/TLS port:", StringComparison.Ordinal))
                {
                    tls = int.Parse(value, CultureInfo.InvariantCulture);
                }
                else if (line.StartsWith("HTTPS/WS port:", StringComparison.Ordinal))
                {
                    https = int.Parse(value, CultureInfo.InvariantCulture);
                }
                else if (line.StartsWith("CA certificate:", StringComparison.Ordinal))
                {
                    ca = value;
                }
            }

            return new ChildEmulator(process, ownerKey, tls, https, ca);
        }

        public ServiceRestClient Service() =>
            new(HttpsPort, new EmulatorTrust(CaPath), SasToken.CreateForTimeToLive("localhost", ownerKey, TimeSpan.FromHours(1), "iothubowner"));

        public MQTTnet.MqttClientOptionsBuilder Options(string id, string key)
        {
            var trust = new EmulatorTrust(CaPath);
            return new MQTTnet.MqttClientOptionsBuilder()
                .WithTcpServer("localhost", TlsPort)
                .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V311)
                .WithClientId(id)
                .WithCredentials($"localhost/{id}/?api-version=2021-04-12", SasToken.CreateForTimeToLive(SasResource.ForDevice("localhost", id), key, TimeSpan.FromHours(1)))
                .WithTimeout(TimeSpan.FromSeconds(10))
                .WithTlsOptions(o => o.UseTls().WithCertificateValidationHandler(e => trust.Validate(e.Certificate, e.SslPolicyErrors)));
        }

        public void Kill() => process.Dispose();

        public void Dispose() => process.Dispose();
    }
}
