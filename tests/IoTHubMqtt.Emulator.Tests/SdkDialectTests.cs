using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// What the SDKs and samples no one here wrote send and expect: empty keys to be generated, quoted <c>"*"</c> ETags,
/// twin <c>$metadata</c>, <c>iothub-ack</c> on every C2D message, and a subscription to <c>#</c> as the public mosquitto
/// sample for IoT Hub makes it. Checked with the official Node.js SDKs and mosquitto's clients, and with raw requests.
/// </summary>
public sealed class SdkDialectTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    private ServiceRestClient Service => fixture.Service;

    // ------------------------------------------------------------------ registry

    [Fact]
    public async Task CreateWithEmptyKeys_GeneratesThem_AndAnUpdateWithEmptyKeysKeepsThem()
    {
        var id = fixture.NewDeviceId("empty-keys");
        var empty = new JsonObject { ["type"] = "sas", ["symmetricKey"] = new JsonObject { ["primaryKey"] = "", ["secondaryKey"] = "" } };
        var created = await Service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id, ["authentication"] = empty.DeepClone() });
        Assert.Equal(HttpStatusCode.OK, created.Status);
        var primary = created.Json!["authentication"]!["symmetricKey"]!["primaryKey"]!.GetValue<string>();
        var secondary = created.Json["authentication"]!["symmetricKey"]!["secondaryKey"]!.GetValue<string>();
        Assert.Equal(32, Convert.FromBase64String(primary).Length);
        Assert.Equal(32, Convert.FromBase64String(secondary).Length);
        Assert.NotEqual(primary, secondary);

        var updated = await Service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id, ["status"] = "disabled", ["authentication"] = empty.DeepClone() },
            headers: new Dictionary<string, string> { ["If-Match"] = "\"*\"" });
        Assert.Equal(HttpStatusCode.OK, updated.Status);
        Assert.Equal(primary, updated.Json!["authentication"]!["symmetricKey"]!["primaryKey"]!.GetValue<string>());
        Assert.Equal("disabled", updated.Json["status"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("*")]
    [InlineData("\"*\"")]
    public async Task WildcardETag_QuotedOrNot_MatchesOnDeviceUpdateTwinPatchAndDelete(string wildcard)
    {
        var (id, _) = fixture.CreateDevice("star");
        var headers = new Dictionary<string, string> { ["If-Match"] = wildcard };
        var update = await Service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id, ["statusReason"] = "star" }, headers: headers);
        var twin = await Service.SendAsync(HttpMethod.Patch, $"twins/{id}", new JsonObject { ["tags"] = new JsonObject { ["t"] = 1 } }, headers: headers);
        var delete = await Service.SendAsync(HttpMethod.Delete, $"devices/{id}", headers: headers);

        Assert.Equal(HttpStatusCode.OK, update.Status);
        Assert.Equal(HttpStatusCode.OK, twin.Status);
        Assert.Equal(HttpStatusCode.NoContent, delete.Status);
    }

    [Fact]
    public async Task QuotedETag_OfTheCurrentVersion_Matches_AndAStaleOneIsPreconditionFailed()
    {
        var (id, _) = fixture.CreateDevice("etag");
        var device = await Service.SendAsync(HttpMethod.Get, $"devices/{id}");
        var etag = device.Header("ETag")!;
        Assert.StartsWith("\"", etag, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await Service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id },
            headers: new Dictionary<string, string> { ["If-Match"] = etag })).Status);
        var stale = await Service.SendAsync(HttpMethod.Delete, $"devices/{id}", headers: new Dictionary<string, string> { ["If-Match"] = etag });
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.Status);
        Assert.Equal(412002, stale.Json!["errorCode"]!.GetValue<int>());
    }

    [Fact]
    public async Task NodeServiceSdk_CreatesWithoutKeys_UpdatesTwinsAndDeletesWithQuotedStar()
    {
        var node = NodePeer.RequireOrSkip("azure-iothub");
        var id = fixture.NewDeviceId("node-registry");
        var events = await NodePeer.RunAsync(node, "registry.js", new Dictionary<string, string> { ["NODE_EXTRA_CA_CERTS"] = fixture.Emulator.CaCertificatePath },
            fixture.Emulator.OwnerConnectionString, fixture.Emulator.HttpsPort.ToString(CultureInfo.InvariantCulture), id);

        var created = events.Event("created");
        var key = (string)created["authentication"]!["symmetricKey"]!["primaryKey"]!;
        Assert.Equal(32, Convert.FromBase64String(key).Length);
        Assert.Equal("enabled", (string?)created["status"]);

        var updated = events.Event("updated");
        Assert.Equal("disabled", (string?)updated["status"]);
        Assert.Equal(key, (string?)updated["authentication"]!["symmetricKey"]!["primaryKey"]);

        var twin = events.Event("twin");
        Assert.Equal("0001-01-01T00:00:00Z", (string?)twin["properties"]!["desired"]!["$metadata"]!["$lastUpdated"]);
        Assert.Equal("0001-01-01T00:00:00Z", (string?)twin["properties"]!["reported"]!["$metadata"]!["$lastUpdated"]);

        var patched = events.Event("twinPatched");
        Assert.Equal("12", (string?)patched["tags"]!["room"]);
        var desired = patched["properties"]!["desired"]!;
        Assert.Equal(30, (int)desired["interval"]!);
        Assert.Equal(2, (long)desired["$version"]!);
        Assert.Equal(2, (long)desired["$metadata"]!["$lastUpdatedVersion"]!);
        Assert.Equal(2, (long)desired["$metadata"]!["mode"]!["eco"]!["$lastUpdatedVersion"]!);

        var again = events.Event("twinUpdated")["properties"]!["desired"]!;
        Assert.Equal(60, (int)again["interval"]!);
        Assert.Equal(3, (long)again["$metadata"]!["interval"]!["$lastUpdatedVersion"]!);
        Assert.Equal(2, (long)again["$metadata"]!["mode"]!["$lastUpdatedVersion"]!);

        events.Event("deleted");
        Assert.Equal("DeviceNotFoundError", (string?)events.Event("gone")["name"]);
    }

    // ------------------------------------------------------------------ twin $metadata

    [Fact]
    public async Task ServiceTwin_CarriesMetadata_AsTheHubDoes_WhileTheDeviceSeesNone()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var hub = EmulatorFixture.Start(o => o.TimeProvider = clock);
        var (id, key) = hub.CreateDevice("meta");
        var fresh = (await hub.Service.SendAsync(HttpMethod.Get, $"twins/{id}")).Json!;
        Assert.Equal("""{"$lastUpdated":"0001-01-01T00:00:00Z"}""", fresh["properties"]!["desired"]!["$metadata"]!.ToJsonString());
        Assert.Equal("""{"$lastUpdated":"0001-01-01T00:00:00Z"}""", fresh["properties"]!["reported"]!["$metadata"]!.ToJsonString());
        Assert.Equal("", (string?)fresh["modelId"]);

        var first = Stamp(clock);
        await hub.Service.SendAsync(HttpMethod.Patch, $"twins/{id}",
            new JsonObject { ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["rate"] = 5, ["led"] = new JsonObject { ["color"] = "red", ["on"] = true } } } });
        clock.Advance(TimeSpan.FromSeconds(90));
        var second = Stamp(clock);
        var patched = (await hub.Service.SendAsync(HttpMethod.Patch, $"twins/{id}",
            new JsonObject { ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["led"] = new JsonObject { ["on"] = false }, ["rate"] = null } } })).Json!;

        var meta = patched["properties"]!["desired"]!["$metadata"]!;
        Assert.Equal(second, (string?)meta["$lastUpdated"]);
        Assert.Equal(3, (long)meta["$lastUpdatedVersion"]!);
        Assert.Null(meta["rate"]); // deleted with its value
        Assert.Equal(second, (string?)meta["led"]!["$lastUpdated"]);
        Assert.Equal(3, (long)meta["led"]!["$lastUpdatedVersion"]!);
        Assert.Equal(second, (string?)meta["led"]!["on"]!["$lastUpdated"]);
        Assert.Equal(first, (string?)meta["led"]!["color"]!["$lastUpdated"]); // untouched by the second patch
        Assert.Equal(2, (long)meta["led"]!["color"]!["$lastUpdatedVersion"]!);

        // Reported properties: $lastUpdated only; the device's own GET has no $metadata.
        await using var device = await MqttTestDevice.ConnectAsync(hub.Emulator, id, key);
        await device.SubscribeAsync("$iothub/twin/res/#");
        clock.Advance(TimeSpan.FromSeconds(30));
        var third = Stamp(clock);
        await device.PublishAsync("$iothub/twin/PATCH/properties/reported/?$rid=1", """{"fw":{"version":"1.2"}}""");
        await device.ReceiveAsync("$iothub/twin/res/204/");
        var reported = (await hub.Service.SendAsync(HttpMethod.Get, $"twins/{id}")).Json!["properties"]!["reported"]!["$metadata"]!;
        Assert.Equal(new JsonObject { ["$lastUpdated"] = third, ["fw"] = new JsonObject { ["$lastUpdated"] = third, ["version"] = new JsonObject { ["$lastUpdated"] = third } } },
            reported, JsonNode.DeepEquals);
        await device.PublishAsync("$iothub/twin/GET/?$rid=2", "");
        var onDevice = JsonNode.Parse(MqttTestDevice.Text(await device.ReceiveAsync("$iothub/twin/res/200/")))!;
        Assert.Null(onDevice["desired"]!["$metadata"]);
        Assert.Null(onDevice["reported"]!["$metadata"]);

        // $metadata and reported properties are read-only: a get-modify-put of the whole twin keeps working.
        var whole = (await hub.Service.SendAsync(HttpMethod.Get, $"twins/{id}")).Json!.AsObject();
        whole["properties"]!["desired"]!["extra"] = 1;
        Assert.Equal(HttpStatusCode.OK, (await hub.Service.SendAsync(HttpMethod.Put, $"twins/{id}", whole)).Status);
    }

    [Fact]
    public async Task TwinMetadata_SurvivesARestart()
    {
        var dataPath = Path.Combine(Path.GetTempPath(), "iothubmqtt-meta-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            string id;
            JsonNode before;
            await using (var first = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }))
            {
                (id, _) = first.CreateDevice();
                await first.Service.SendAsync(HttpMethod.Patch, $"twins/{id}", new JsonObject { ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["a"] = 1 } } });
                before = (await first.Service.SendAsync(HttpMethod.Get, $"twins/{id}")).Json!["properties"]!["desired"]!["$metadata"]!;
            }

            await using var second = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; });
            var after = (await second.Service.SendAsync(HttpMethod.Get, $"twins/{id}")).Json!["properties"]!["desired"]!["$metadata"]!;
            Assert.Equal(before, after, JsonNode.DeepEquals);
        }
        finally
        {
            Directory.Delete(dataPath, true);
        }
    }

    // ------------------------------------------------------------------ C2D iothub-ack

    [Fact]
    public async Task CloudToDevice_AlwaysCarriesIothubAck_AfterTheSystemProperties()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("ack");
        var id = device.DeviceId;
        await device.SubscribeAsync($"devices/{id}/messages/devicebound/#");
        await Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("plain"),
            headers: new Dictionary<string, string> { ["iothub-messageid"] = "m-1", ["iothub-app-kind"] = "cmd" });
        await Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("tracked"),
            headers: new Dictionary<string, string> { ["iothub-messageid"] = "m-2", ["iothub-ack"] = "full" });

        var plain = await device.ReceiveAsync($"devices/{id}/messages/devicebound/");
        var tracked = await device.ReceiveAsync($"devices/{id}/messages/devicebound/");
        Assert.Equal($"devices/{id}/messages/devicebound/%24.mid=m-1&%24.to=%2Fdevices%2F{id}%2Fmessages%2Fdevicebound&iothub-ack=none&kind=cmd", plain.Topic);
        Assert.Equal($"devices/{id}/messages/devicebound/%24.mid=m-2&%24.to=%2Fdevices%2F{id}%2Fmessages%2Fdevicebound&iothub-ack=full", tracked.Topic);
    }

    [Fact]
    public async Task NodeDeviceSdk_ReceivesCloudToDeviceMessage_WithIothubAck()
    {
        var node = NodePeer.RequireOrSkip("azure-iot-device-mqtt");
        var (id, key) = fixture.CreateDevice("node-ack");
        var connectionString = $"HostName={fixture.Emulator.HostName};DeviceId={id};SharedAccessKey={key};GatewayHostName=localhost:{fixture.Emulator.MqttTlsPort.ToString(CultureInfo.InvariantCulture)}";
        using var device = ExternalProcess.Start(node, Path.Combine(NodePeer.InteropDirectory, "device.js"), connectionString, fixture.Emulator.CaCertificatePath);
        await WaitForEventAsync(device, "sent");
        await Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("hello node"),
            headers: new Dictionary<string, string> { ["iothub-messageid"] = "n-1", ["iothub-ack"] = "positive" });

        var message = await WaitForEventAsync(device, "c2d");
        Assert.Equal("hello node", (string?)message["body"]);
        Assert.Equal("n-1", (string?)message["messageId"]);
        Assert.Equal("positive", (string?)message["properties"]!["iothub-ack"]);
    }

    // ------------------------------------------------------------------ subscription to #

    [Fact]
    public async Task MosquittoSub_SubscribedToHash_AsThePublicSampleDoes_GetsCloudToDeviceMessages()
    {
        // Azure-Samples/IoTMQTTSample, mosquitto_pub/readme.md: mosquitto_sub ... -t "#" -V mqttv311 --cafile ... -q 1,
        // after which the hub delivers 'devices/{id}/messages/devicebound/%24.mid=…&%24.to=…&iothub-ack=none'.
        var sub = ExternalProcess.Require("mosquitto_sub", "mosquitto-clients");
        var (id, key) = fixture.CreateDevice("hash");
        var send = await Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("hello world"),
            headers: new Dictionary<string, string> { ["iothub-messageid"] = "h-1", ["Content-Encoding"] = "utf-8" });
        Assert.Equal(HttpStatusCode.OK, send.Status);

        var (exit, output, error) = await ExternalProcess.RunAsync(sub, TimeSpan.FromSeconds(30),
            "-h", "localhost", "-p", fixture.Emulator.MqttTlsPort.ToString(CultureInfo.InvariantCulture), "--cafile", fixture.Emulator.CaCertificatePath,
            "-V", "mqttv311", "-i", id, "-u", $"{fixture.Emulator.HostName}/{id}/?api-version=2018-06-30", "-P", MqttTestDevice.Token(fixture.Emulator, id, key),
            "-t", "#", "-q", "1", "-C", "1", "-v", "-W", "20");

        Assert.True(exit == 0, error);
        Assert.Equal($"devices/{id}/messages/devicebound/%24.mid=h-1&%24.to=%2Fdevices%2F{id}%2Fmessages%2Fdevicebound&%24.ce=utf-8&iothub-ack=none hello world", output.Trim());
    }

    [Theory]
    [InlineData("#")]
    [InlineData("devices/{id}/messages/#")]
    [InlineData("devices/+/messages/devicebound/#")]
    [InlineData("devices/{id}/messages/devicebound/+")]
    public async Task FilterCoveringTheDevicesCloudToDeviceTopics_ReceivesThem_ButNoMethodCalls(string filter)
    {
        await using var device = await fixture.ConnectNewDeviceAsync("cover");
        var id = device.DeviceId;
        var granted = await device.Client.SubscribeAsync(new MQTTnet.MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter.Replace("{id}", id, StringComparison.Ordinal), MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal(MQTTnet.MqttClientSubscribeResultCode.GrantedQoS1, Assert.Single(granted.Items).ResultCode);
        await Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("covered"));
        Assert.Equal("covered", MqttTestDevice.Text(await device.ReceiveAsync($"devices/{id}/messages/devicebound/")));

        // MQTT 3.1.1 §4.7.2: a filter starting with a wildcard matches no topic starting with '$': no direct methods.
        var call = await Service.SendAsync(HttpMethod.Post, $"twins/{id}/methods", new JsonObject { ["methodName"] = "ping", ["responseTimeoutInSeconds"] = 5 });
        Assert.Equal(HttpStatusCode.NotFound, call.Status);
        Assert.Equal(404103, call.Json!["errorCode"]!.GetValue<int>());
        Assert.True(device.Client.IsConnected);
    }

    [Fact]
    public async Task FilterCoveringAnotherDevicesTopicsOnly_ClosesTheConnection()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("other");
        var id = device.DeviceId;
        try
        {
            await device.SubscribeAsync("devices/someone-else/messages/devicebound/#");
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            // the connection may close before the SUBACK arrives
        }

        await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private static string Stamp(FakeTimeProvider clock) => clock.GetUtcNow().UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", CultureInfo.InvariantCulture);

    private static async Task<JsonObject> WaitForEventAsync(RunningProcess process, string name)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2); // a guard against a hang, not a measure
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            var line = await process.ReadLineAsync(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1));
            if (JsonNode.Parse(line) is JsonObject json)
            {
                Assert.False((string?)json["event"] == "error", $"The Node SDK device reported an error: {line}");
                if ((string?)json["event"] == name)
                {
                    return json;
                }
            }
        }
    }
}
