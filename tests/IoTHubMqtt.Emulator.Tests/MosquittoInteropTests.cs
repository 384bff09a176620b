using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// Unmodified Debian mosquitto clients (package mosquitto-clients) against the emulator with only the host, port,
/// CA file and a SAS password: telemetry, C2D, a direct method and the twin. These fail when the tools are missing.
/// </summary>
public sealed class MosquittoInteropTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(20);

    private IoTHubEmulator Emulator => fixture.Emulator;

    private string[] Connection(string deviceId, string key) =>
    [
        "-h", "localhost", "-p", Emulator.MqttTlsPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--cafile", Emulator.CaCertificatePath, "-V", "mqttv311",
        "-i", deviceId, "-u", $"{Emulator.HostName}/{deviceId}/?api-version=2021-04-12", "-P", MqttTestDevice.Token(Emulator, deviceId, key),
    ];

    [Fact]
    public async Task MosquittoPub_Telemetry_IsReadByTheService()
    {
        var pub = ExternalProcess.Require("mosquitto_pub", "mosquitto-clients");
        var (id, key) = fixture.CreateDevice("mosq");
        var (exit, _, error) = await ExternalProcess.RunAsync(pub, ToolTimeout,
            [.. Connection(id, key), "-q", "1", "-t", $"devices/{id}/messages/events/source=mosquitto", "-m", """{"temp":20}"""]);
        Assert.True(exit == 0, error);

        var read = await fixture.Service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={id}&timeout=5");
        var message = Assert.Single(read.Json!["messages"]!.AsArray())!;
        Assert.Equal("""{"temp":20}""", Encoding.UTF8.GetString(Convert.FromBase64String(message["body"]!.GetValue<string>())));
        Assert.Equal("mosquitto", message["properties"]!["source"]!.GetValue<string>());
    }

    [Fact]
    public async Task MosquittoSub_ReceivesCloudToDeviceMessage()
    {
        var sub = ExternalProcess.Require("mosquitto_sub", "mosquitto-clients");
        var (id, key) = fixture.CreateDevice("mosq");
        var send = await fixture.Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("to mosquitto"),
            headers: new Dictionary<string, string> { ["iothub-messageid"] = "m-42" });
        Assert.Equal(HttpStatusCode.OK, send.Status);

        var (exit, output, error) = await ExternalProcess.RunAsync(sub, ToolTimeout,
            [.. Connection(id, key), "-q", "1", "-t", $"devices/{id}/messages/devicebound/#", "-C", "1", "-v", "-W", "15"]);
        Assert.True(exit == 0, error);
        Assert.Contains($"devices/{id}/messages/devicebound/%24.mid=m-42", output, StringComparison.Ordinal);
        Assert.Contains("to mosquitto", output, StringComparison.Ordinal);
        await Eventually.TrueAsync(() => Emulator.Hub.QueuedCount(id) == 0); // mosquitto_sub acknowledged it
    }

    [Fact]
    public async Task MosquittoSubAndPub_AnswerADirectMethod()
    {
        var sub = ExternalProcess.Require("mosquitto_sub", "mosquitto-clients");
        var pub = ExternalProcess.Require("mosquitto_pub", "mosquitto-clients");
        var (id, key) = fixture.CreateDevice("mosq");
        using var listener = ExternalProcess.Start(sub, [.. Connection(id, key), "-t", "$iothub/methods/POST/#", "-C", "1", "-v", "-W", "15"]);
        var call = fixture.Service.SendAsync(HttpMethod.Post, $"twins/{id}/methods",
            new JsonObject { ["methodName"] = "blink", ["payload"] = new JsonObject { ["times"] = 3 }, ["responseTimeoutInSeconds"] = 15, ["connectTimeoutInSeconds"] = 10 });
        var line = await listener.ReadLineAsync(ToolTimeout);
        Assert.StartsWith("$iothub/methods/POST/blink/?$rid=", line, StringComparison.Ordinal);
        var topic = line.Split(' ')[0];
        Assert.EndsWith("""{"times":3}""", line, StringComparison.Ordinal);
        await listener.WaitAsync(ToolTimeout);

        var rid = topic.Split("$rid=")[1];
        var (exit, _, error) = await ExternalProcess.RunAsync(pub, ToolTimeout,
            [.. Connection(id, key), "-q", "1", "-t", $"$iothub/methods/res/200/?$rid={rid}", "-m", """{"blinked":3}"""]);
        Assert.True(exit == 0, error);

        var response = await call.WaitAsync(ToolTimeout);
        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal(200, response.Json!["status"]!.GetValue<int>());
        Assert.Equal(3, response.Json["payload"]!["blinked"]!.GetValue<int>());
    }

    [Fact]
    public async Task MosquittoSub_GetsDesiredPatch_AndMosquittoPubPatchesReported()
    {
        var sub = ExternalProcess.Require("mosquitto_sub", "mosquitto-clients");
        var pub = ExternalProcess.Require("mosquitto_pub", "mosquitto-clients");
        var (id, key) = fixture.CreateDevice("mosq");
        using var listener = ExternalProcess.Start(sub, [.. Connection(id, key), "-t", "$iothub/twin/PATCH/properties/desired/#", "-C", "1", "-v", "-W", "15"]);
        await Eventually.TrueAsync(() => Emulator.Devices.IsSubscribedToDesired(id));
        var patch = await fixture.Service.SendAsync(HttpMethod.Patch, $"twins/{id}", new JsonObject { ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["mode"] = "eco" } } });
        Assert.Equal(HttpStatusCode.OK, patch.Status);
        var line = await listener.ReadLineAsync(ToolTimeout);
        Assert.StartsWith("$iothub/twin/PATCH/properties/desired/?$version=2 ", line, StringComparison.Ordinal);
        Assert.Equal("eco", JsonNode.Parse(line[(line.IndexOf(' ', StringComparison.Ordinal) + 1)..])!["mode"]!.GetValue<string>());

        var (exit, _, error) = await ExternalProcess.RunAsync(pub, ToolTimeout,
            [.. Connection(id, key), "-q", "1", "-t", "$iothub/twin/PATCH/properties/reported/?$rid=2", "-m", """{"mode":"eco","battery":87}"""]);
        Assert.True(exit == 0, error);
        var serviceTwin = await fixture.Service.SendAsync(HttpMethod.Get, $"twins/{id}");
        Assert.Equal(87, serviceTwin.Json!["properties"]!["reported"]!["battery"]!.GetValue<int>());
        Assert.Equal(2, serviceTwin.Json["properties"]!["reported"]!["$version"]!.GetValue<long>());
    }

    [Fact]
    public async Task MosquittoPub_WithWrongPassword_IsRefused()
    {
        var pub = ExternalProcess.Require("mosquitto_pub", "mosquitto-clients");
        var (id, _) = fixture.CreateDevice("mosq");
        var args = Connection(id, IoTHubMqtt.Core.Connection.SharedAccessKeys.Generate());
        var (exit, _, error) = await ExternalProcess.RunAsync(pub, ToolTimeout, [.. args, "-q", "1", "-t", $"devices/{id}/messages/events/", "-m", "x"]);
        Assert.NotEqual(0, exit);
        Assert.Contains("not authorised", error, StringComparison.OrdinalIgnoreCase);
    }
}
