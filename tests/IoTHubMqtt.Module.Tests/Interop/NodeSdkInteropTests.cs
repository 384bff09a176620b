using System.Net;
using System.Text.Json.Nodes;
using IoTHubMqtt.Module.Tests.Harness;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Module.Tests.Interop;

/// <summary>
/// The module's service cmdlets against a device no one in this project wrote: the official Azure IoT Node.js SDK
/// (azure-iot-device over azure-iot-device-mqtt, tests/interop/device.js) connected to the emulator over MQTT/TLS.
/// The SDK always dials mqtts://{GatewayHostName or HostName} (port 8883 unless the name carries one), and puts HostName
/// in its user name and SAS audience: GatewayHostName=localhost:{port} reaches the emulator on its ephemeral port while
/// the hub name stays 'localhost'. Skipped (with the reason) when node or tests/interop/node_modules is missing.
/// </summary>
public sealed class NodeSdkInteropTests : IDisposable
{
    private readonly PowerShellSession ps = new();
    private HubService? service;
    private NodeSdkDevice? device;
    private string deviceId = "";

    public void Dispose()
    {
        device?.Dispose();
        ps.Invoke("if ($hub) { $hub | Stop-IoTHubEmulator -Confirm:$false }");
        service?.Dispose();
        ps.Dispose();
    }

    /// <summary>Starts an emulator ($hub, $svc = its service connection), registers a device and starts the Node SDK device with it.</summary>
    private async Task StartNodeDeviceAsync()
    {
        var node = NodeSdkDevice.RequireNodeOrSkip();
        var setup = ps.Invoke("""
            $hub = Start-IoTHubEmulator -ServiceRequestsPerSecond 0
            $svc = $hub | Connect-IoTHubService
            $deviceId = 'node-' + [guid]::NewGuid().ToString('N').Substring(0, 8)
            $device = New-IoTHubDevice -DeviceId $deviceId
            $deviceId
            $device.ConnectionString + ';GatewayHostName=localhost:' + $hub.MqttTlsPort
            $hub.CaCertificatePath
            """);
        Assert.True(!setup.AllErrors.Any(), string.Join("; ", setup.AllErrors));
        var values = setup.Output.Select(o => (string)o.BaseObject).ToList();
        deviceId = values[0];
        service = HubService.For(ps);
        device = await NodeSdkDevice.StartAsync(node, values[1], values[2]);
    }

    [Fact]
    public async Task ReceiveTelemetry_GetsTheNodeDevicesMessageAndApplicationProperty()
    {
        await StartNodeDeviceAsync();

        var result = ps.Invoke("""
            $m = Receive-IoTHubTelemetry -DeviceId $deviceId -Count 1 -Timeout 20 -StartPosition Start
            $m.Body
            $m.Properties['origin']
            $m.DeviceId -eq $deviceId
            """, timeout: TimeSpan.FromSeconds(60));

        Assert.Empty(result.AllErrors);
        var output = result.Output.Select(o => o.ToString()).ToList();
        Assert.Equal(3, output.Count);
        var body = JsonNode.Parse(output[0])!;
        Assert.Equal("node", (string?)body["from"]);
        Assert.Equal(21.5, body["temperature"]!.GetValue<double>());
        Assert.Equal("node-sdk", output[1]);
        Assert.Equal("True", output[2]);
    }

    [Fact]
    public async Task InvokeMethod_EchoOnTheNodeDevice_ReturnsItsPayloadWithStatus200()
    {
        await StartNodeDeviceAsync();

        var result = ps.Invoke("""
            $r = Invoke-IoTHubMethod -DeviceId $deviceId -MethodName echo -Payload @{ greeting = 'hello from PowerShell'; n = 3 } -Timeout 20
            $r.Status
            $r.Payload.greeting
            $r.Payload.n
            """, timeout: TimeSpan.FromSeconds(60));
        var call = await device!.WaitForAsync("method");

        Assert.Empty(result.AllErrors);
        Assert.Equal(["200", "hello from PowerShell", "3"], result.Output.Select(o => o.ToString()));
        Assert.Equal("echo", (string?)call["name"]);
        Assert.Equal("hello from PowerShell", (string?)call["payload"]!["greeting"]);
    }

    [Fact]
    public async Task SetDesiredProperty_ReachesTheNodeDevicesTwinHandler()
    {
        await StartNodeDeviceAsync();

        var result = ps.Invoke("(Set-IoTHubDesiredProperty -DeviceId $deviceId -Property @{ interval = 7; mode = 'eco' }).Version");
        var patch = await device!.WaitForAsync("desired", e => e["patch"]?["interval"] is not null);

        Assert.Empty(result.AllErrors);
        Assert.Equal(7, patch["patch"]!["interval"]!.GetValue<int>());
        Assert.Equal("eco", (string?)patch["patch"]!["mode"]);
        Assert.Equal(result.Output.Single().ToString(), patch["patch"]!["$version"]!.ToString());
    }

    [Fact]
    public async Task SendCloudMessage_ReachesTheNodeDeviceWithPropertiesAndMessageId()
    {
        await StartNodeDeviceAsync();

        var result = ps.Invoke("(Send-IoTHubCloudMessage -DeviceId $deviceId -Message 'hello node' -Property @{ priority = 'high' } -MessageId interop-42).MessageId");
        var message = await device!.WaitForAsync("c2d");

        Assert.Empty(result.AllErrors);
        Assert.Equal("interop-42", result.Output.Single().ToString());
        Assert.Equal("hello node", (string?)message["body"]);
        Assert.Equal("interop-42", (string?)message["messageId"]);
        Assert.Equal("high", (string?)message["properties"]!["priority"]);
    }

    [Fact]
    public async Task NodeServiceSdk_SendsCloudMessage_TheModulesDeviceReceivesItWithPropertyAndMessageId()
    {
        // The Node.js service SDK (azure-iothub, tests/interop/service.js) opens AMQP without SASL and authorizes with a
        // CBS token for HostName=localhost:{AmqpPort}; the device is the module's own Connect-IoTHub over MQTT.
        var node = NodeSdkDevice.RequireNodeOrSkip("azure-iothub");
        var setup = ps.Invoke("""
            $hub = Start-IoTHubEmulator -ServiceRequestsPerSecond 0
            $svc = $hub | Connect-IoTHubService
            $deviceId = 'module-' + [guid]::NewGuid().ToString('N').Substring(0, 8)
            $cs = (New-IoTHubDevice -DeviceId $deviceId).ConnectionString
            $conn = Connect-IoTHub -ConnectionString $cs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
            $deviceId
            $hub.OwnerConnectionString -replace '(?<=HostName=)[^;]+', ('$0:' + $hub.AmqpPort)
            $hub.CaCertificatePath
            """);
        Assert.True(!setup.AllErrors.Any(), string.Join("; ", setup.AllErrors));
        var values = setup.Output.Select(o => (string)o.BaseObject).ToList();
        Assert.Matches(@"HostName=[^;]+:\d+;", values[1]);

        using (var sender = ExternalProcess.Start(node, new Dictionary<string, string> { ["NODE_EXTRA_CA_CERTS"] = values[2] },
            Path.Combine(NodeSdkDevice.InteropDirectory, "service.js"), values[1], values[0], "hello from node service", "node-svc-7", "priority=high"))
        {
            var (exitCode, output, error) = await sender.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(exitCode == 0, $"service.js exited with {exitCode}: {output} {error}");
            Assert.Contains("\"event\":\"sent\"", output, StringComparison.Ordinal);
        }

        var result = ps.Invoke("""
            $m = Receive-IoTHubMessage -Count 1 -Timeout 20
            $m.Body
            $m.MessageId
            $m.Properties['priority']
            """, timeout: TimeSpan.FromSeconds(60));

        Assert.Empty(result.AllErrors);
        Assert.Equal(["hello from node service", "node-svc-7", "high"], result.Output.Select(o => o.ToString()));
    }

    [Fact]
    public async Task ReportedProperty_FromTheNodeDevice_IsInTheServiceTwin()
    {
        await StartNodeDeviceAsync();

        var (status, twin) = await service!.SendAsync(HttpMethod.Get, $"twins/{deviceId}");

        Assert.Equal(HttpStatusCode.OK, status);
        var reported = twin!["properties"]!["reported"]!;
        Assert.Equal("azure-iot-device", (string?)reported["sdk"]);
        Assert.Equal("node", (string?)reported["interop"]!["language"]);
        Assert.Equal("connected", (string?)twin["connectionState"], StringComparer.OrdinalIgnoreCase);
    }
}
