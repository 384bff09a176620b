using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>Telemetry, C2D, methods and twin, driven by a raw MQTTnet device and the service REST API.</summary>
public sealed class DeviceSurfaceTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    private ServiceRestClient Service => fixture.Service;

    [Fact]
    public async Task ConnectedDevice_ItsSessionSharesTheEmptySessionItems_AndItSubscribesAndSends()
    {
        // Each held connection would otherwise keep a dictionary of its own that nothing uses (about 500 bytes).
        Assert.True(Mqtt.SessionItems.Available, "MQTTnet's ValidatingConnectionEventArgs no longer keeps SessionItems where the emulator replaces it.");
        await using var device = await fixture.ConnectNewDeviceAsync();
        Assert.Same(Mqtt.SessionItems.None, await fixture.Emulator.MqttSessionItemsAsync(device.DeviceId));

        await device.SubscribeAsync($"devices/{device.DeviceId}/messages/devicebound/#");
        Assert.True((await device.PublishAsync($"devices/{device.DeviceId}/messages/events/", "held")).IsSuccess);
        var read = await Service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={device.DeviceId}&from=0&timeout=5");
        Assert.Equal("held", Encoding.UTF8.GetString(Convert.FromBase64String(Assert.Single(read.Json!["messages"]!.AsArray())!["body"]!.GetValue<string>())));
    }

    [Fact]
    public async Task Telemetry_WithPropertyBag_IsReadByTheServiceWithItsProperties()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        var topic = $"devices/{device.DeviceId}/messages/events/%24.mid=m-1&%24.ct=application%2Fjson&%24.ce=utf-8&color=dark%20blue&n=1";
        var result = await device.PublishAsync(topic, """{"t":21.5}""");
        Assert.True(result.IsSuccess);

        var read = await Service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={device.DeviceId}&from=0&timeout=5");
        var message = Assert.Single(read.Json!["messages"]!.AsArray())!;
        Assert.Equal("""{"t":21.5}""", Encoding.UTF8.GetString(Convert.FromBase64String(message["body"]!.GetValue<string>())));
        Assert.Equal("dark blue", message["properties"]!["color"]!.GetValue<string>());
        Assert.Equal("1", message["properties"]!["n"]!.GetValue<string>());
        Assert.Equal("m-1", message["systemProperties"]!["message-id"]!.GetValue<string>());
        Assert.Equal("application/json", message["systemProperties"]!["content-type"]!.GetValue<string>());
        Assert.Equal("utf-8", message["systemProperties"]!["content-encoding"]!.GetValue<string>());
    }

    [Fact]
    public async Task Telemetry_SentInABurst_IsAllAcknowledged_AndEveryBodyKeptAsSent()
    {
        // Many publishes outstanding at once reach the hub together and are answered together; each body is its own.
        await using var device = await fixture.ConnectNewDeviceAsync();
        var bodies = Enumerable.Range(0, 300).Select(i => Enumerable.Range(0, 64 + (i * 97 % 3000)).Select(j => (byte)(i + j)).ToArray()).ToArray();
        var results = await Task.WhenAll(bodies.Select(body => device.PublishAsync($"devices/{device.DeviceId}/messages/events/", body)));
        Assert.All(results, r => Assert.True(r.IsSuccess));

        var read = await Service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={device.DeviceId}&from=0&max=1000&timeout=5");
        var kept = read.Json!["messages"]!.AsArray().Select(m => Convert.FromBase64String(m!["body"]!.GetValue<string>())).ToArray();
        Assert.Equal(bodies.Length, kept.Length);
        Assert.Equal(bodies.OrderBy(Convert.ToBase64String), kept.OrderBy(Convert.ToBase64String));
    }

    [Fact]
    public async Task Telemetry_WithRetainFlag_CarriesMqttRetainProperty()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        await device.PublishAsync($"devices/{device.DeviceId}/messages/events/", "r", retain: true);
        var read = await Service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={device.DeviceId}&timeout=5");
        var message = Assert.Single(read.Json!["messages"]!.AsArray())!;
        Assert.Equal("true", message["properties"]!["mqtt-retain"]!.GetValue<string>());
    }

    [Fact]
    public async Task CloudToDevice_SentByService_ArrivesWithPropertiesAndIsCompletedByPuback()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        await device.SubscribeAsync($"devices/{device.DeviceId}/messages/devicebound/#");
        var send = await Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{device.DeviceId}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("hello device"),
            headers: new Dictionary<string, string> { ["iothub-messageid"] = "c2d-1", ["iothub-correlationid"] = "corr", ["iothub-app-level"] = "high" });
        Assert.Equal(HttpStatusCode.OK, send.Status);

        var message = await device.ReceiveAsync($"devices/{device.DeviceId}/messages/devicebound/");
        Assert.Equal("hello device", MqttTestDevice.Text(message));
        Assert.Contains("%24.mid=c2d-1", message.Topic, StringComparison.Ordinal);
        Assert.Contains("%24.cid=corr", message.Topic, StringComparison.Ordinal);
        Assert.Contains("level=high", message.Topic, StringComparison.Ordinal);
        Assert.Equal(MqttQualityOfServiceLevel.AtLeastOnce, message.QualityOfServiceLevel);
        await Eventually.TrueAsync(() => fixture.Emulator.Hub.QueuedCount(device.DeviceId) == 0);
    }

    [Fact]
    public async Task CloudToDevice_NotAcknowledged_IsRedeliveredAfterReconnectWithPersistentSession()
    {
        var (id, key) = fixture.CreateDevice();
        var first = await MqttTestDevice.ConnectAsync(fixture.Emulator, id, key, cleanSession: false);
        var gotFirst = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        first.Client.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false; // never PUBACK: the hub must keep the message
            gotFirst.TrySetResult(e.ApplicationMessage.Topic);
            return Task.CompletedTask;
        };
        await first.SubscribeAsync($"devices/{id}/messages/devicebound/#");
        await Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("keep me"),
            headers: new Dictionary<string, string> { ["iothub-messageid"] = "keep-1" });
        var topic = await gotFirst.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("keep-1", topic, StringComparison.Ordinal);
        Assert.Equal(1, fixture.Emulator.Hub.QueuedCount(id));
        await first.DisposeAsync();

        // Reconnect with CleanSession=false and no new SUBSCRIBE: the hub delivers again.
        await using var second = await MqttTestDevice.ConnectAsync(fixture.Emulator, id, key, cleanSession: false);
        var again = await second.ReceiveAsync($"devices/{id}/messages/devicebound/");
        Assert.Equal("keep me", MqttTestDevice.Text(again));
        await Eventually.TrueAsync(() => fixture.Emulator.Hub.QueuedCount(id) == 0);
    }

    [Fact]
    public async Task CloudToDevice_NotAcknowledged_IsRedeliveredWhenTheLockExpiresThenDeadLettered()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var fx = EmulatorFixture.Start(o =>
        {
            o.TimeProvider = clock;
            o.CloudToDeviceMaxDeliveryCount = 2; // the lock stays the hub's minute
        });
        await using var device = await fx.ConnectNewDeviceAsync();
        var id = device.DeviceId;
        var deliveries = System.Threading.Channels.Channel.CreateUnbounded<string>();
        device.Client.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false;
            deliveries.Writer.TryWrite(e.ApplicationMessage.Topic);
            return Task.CompletedTask;
        };
        await device.SubscribeAsync($"devices/{id}/messages/devicebound/#");
        await fx.Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("ack me"));
        await NextAsync(deliveries);

        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(1, fx.Emulator.Hub.QueuedCount(id)); // still locked, not yet sent again
        Assert.False(deliveries.Reader.TryRead(out _));
        clock.Advance(TimeSpan.FromSeconds(2));
        await NextAsync(deliveries); // the lock ran out: delivered again

        clock.Advance(TimeSpan.FromSeconds(61));
        await Eventually.TrueAsync(() => fx.Emulator.Hub.QueuedCount(id) == 0); // dead-lettered after the second lock ran out
        clock.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(0, fx.Emulator.Hub.QueuedCount(id));
        Assert.False(deliveries.Reader.TryRead(out _));
    }

    [Fact]
    public async Task CloudToDevice_QueuedWhileOffline_IsDeliveredOnSubscribe()
    {
        var (id, key) = fixture.CreateDevice();
        for (var i = 0; i < 3; i++)
        {
            var send = await Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes($"m{i}"));
            Assert.Equal(HttpStatusCode.OK, send.Status);
        }

        await using var device = await MqttTestDevice.ConnectAsync(fixture.Emulator, id, key);
        await device.SubscribeAsync($"devices/{id}/messages/devicebound/#");
        var bodies = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            bodies.Add(MqttTestDevice.Text(await device.ReceiveAsync($"devices/{id}/messages/devicebound/")));
        }

        Assert.Equal(["m0", "m1", "m2"], bodies);
    }

    [Fact]
    public async Task CloudToDevice_FiftyFirstMessage_IsRejectedWithQueueDepthExceeded()
    {
        var (id, _) = fixture.CreateDevice();
        for (var i = 0; i < 50; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: [1])).Status);
        }

        var full = await Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: [1]);
        Assert.Equal(HttpStatusCode.Forbidden, full.Status);
        Assert.Equal(403004, full.Json!["errorCode"]!.GetValue<int>());
    }

    [Fact]
    public async Task CloudToDevice_ExpiredBeforeDelivery_IsNotDelivered()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var fx = EmulatorFixture.Start(o => o.TimeProvider = clock);
        var (id, key) = fx.CreateDevice();
        var expiry = clock.GetUtcNow().AddSeconds(30).UtcDateTime.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        await fx.Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("stale"),
            headers: new Dictionary<string, string> { ["iothub-expiry"] = expiry });
        clock.Advance(TimeSpan.FromSeconds(31));
        await fx.Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("fresh"));
        await using var device = await MqttTestDevice.ConnectAsync(fx.Emulator, id, key);
        await device.SubscribeAsync($"devices/{id}/messages/devicebound/#");

        // Messages arrive in order, so the first one being the fresh one shows the stale one was dropped.
        Assert.Equal("fresh", MqttTestDevice.Text(await device.ReceiveAsync($"devices/{id}/messages/devicebound/")));
    }

    [Fact]
    public async Task CloudToDevice_ToUnknownDevice_Is404()
    {
        var send = await Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{fixture.NewDeviceId()}/messages/devicebound", rawBody: [1]);
        Assert.Equal(HttpStatusCode.NotFound, send.Status);
        Assert.Equal(404001, send.Json!["errorCode"]!.GetValue<int>());
    }

    [Fact]
    public async Task Method_AnsweredByDevice_ReturnsStatusAndPayloadToTheService()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        await device.SubscribeAsync("$iothub/methods/POST/#", MqttQualityOfServiceLevel.AtMostOnce);
        device.Client.ApplicationMessageReceivedAsync += async e =>
        {
            if (e.ApplicationMessage.Topic.StartsWith("$iothub/methods/POST/reboot/", StringComparison.Ordinal))
            {
                var rid = e.ApplicationMessage.Topic.Split("$rid=")[1];
                var request = JsonNode.Parse(MqttTestDevice.Text(e.ApplicationMessage))!;
                await device.PublishAsync($"$iothub/methods/res/201/?$rid={rid}", $$"""{"delay":{{request["delay"]}},"ok":true}""");
            }
        };

        var response = await Service.SendAsync(HttpMethod.Post, $"twins/{device.DeviceId}/methods",
            new JsonObject { ["methodName"] = "reboot", ["payload"] = new JsonObject { ["delay"] = 5 }, ["responseTimeoutInSeconds"] = 10 });
        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal(201, response.Json!["status"]!.GetValue<int>());
        Assert.Equal(5, response.Json["payload"]!["delay"]!.GetValue<int>());
        Assert.True(response.Json["payload"]!["ok"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Method_DeviceOffline_Is404DeviceNotOnline()
    {
        var (id, _) = fixture.CreateDevice();
        var response = await Service.SendAsync(HttpMethod.Post, $"twins/{id}/methods", new JsonObject { ["methodName"] = "x", ["responseTimeoutInSeconds"] = 5 });
        Assert.Equal(HttpStatusCode.NotFound, response.Status);
        Assert.Equal(404103, response.Json!["errorCode"]!.GetValue<int>());
    }

    [Fact]
    public async Task Method_DeviceSilent_Is504AfterTheResponseTimeout()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var fx = EmulatorFixture.Start(o => o.TimeProvider = clock);
        await using var device = await fx.ConnectNewDeviceAsync();
        var id = device.DeviceId;
        await device.SubscribeAsync("$iothub/methods/POST/#");
        var call = fx.Service.SendAsync(HttpMethod.Post, $"twins/{id}/methods", new JsonObject { ["methodName"] = "slow", ["responseTimeoutInSeconds"] = 5 });
        Assert.StartsWith("$iothub/methods/POST/slow/?$rid=", (await device.ReceiveAsync("$iothub/methods/POST/")).Topic, StringComparison.Ordinal);

        clock.Advance(TimeSpan.FromSeconds(4.9));
        Assert.False(call.IsCompleted, "Answered before the method's response timeout.");
        clock.Advance(TimeSpan.FromSeconds(0.2));
        var response = await call.WaitAsync(TimeSpan.FromMinutes(2), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.Status);
        Assert.Equal(504101, response.Json!["errorCode"]!.GetValue<int>());
    }

    [Fact]
    public async Task Twin_GetByDevice_ReturnsDesiredAndReportedWithVersions()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        var patch = await Service.SendAsync(HttpMethod.Patch, $"twins/{device.DeviceId}", new JsonObject { ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["interval"] = 30 } } });
        Assert.Equal(HttpStatusCode.OK, patch.Status);
        await device.SubscribeAsync("$iothub/twin/res/#");
        await device.PublishAsync("$iothub/twin/GET/?$rid=7", "");
        var response = await device.ReceiveAsync("$iothub/twin/res/");
        Assert.Equal("$iothub/twin/res/200/?$rid=7", response.Topic);
        var twin = JsonNode.Parse(MqttTestDevice.Text(response))!;
        Assert.Equal(30, twin["desired"]!["interval"]!.GetValue<int>());
        Assert.Equal(2, twin["desired"]!["$version"]!.GetValue<long>());
        Assert.Equal(1, twin["reported"]!["$version"]!.GetValue<long>());
    }

    [Fact]
    public async Task Twin_ReportedPatch_Answers204WithVersionAndNullDeletes()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        await device.SubscribeAsync("$iothub/twin/res/#");
        await device.PublishAsync("$iothub/twin/PATCH/properties/reported/?$rid=1", """{"fw":"1.0","temp":{"max":40}}""");
        var first = await device.ReceiveAsync("$iothub/twin/res/");
        Assert.Equal("$iothub/twin/res/204/?$rid=1&$version=2", first.Topic);
        await device.PublishAsync("$iothub/twin/PATCH/properties/reported/?$rid=2", """{"fw":null,"temp":{"min":-5}}""");
        var second = await device.ReceiveAsync("$iothub/twin/res/");
        Assert.Equal("$iothub/twin/res/204/?$rid=2&$version=3", second.Topic);

        var twin = await Service.SendAsync(HttpMethod.Get, $"twins/{device.DeviceId}");
        var reported = twin.Json!["properties"]!["reported"]!;
        Assert.Null(reported["fw"]);
        Assert.Equal(40, reported["temp"]!["max"]!.GetValue<int>());
        Assert.Equal(-5, reported["temp"]!["min"]!.GetValue<int>());
        Assert.Equal(3, reported["$version"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("""{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":1}}}}}}}}}}}""")]
    [InlineData("""{"bad.name":1}""")]
    public async Task Twin_InvalidReportedPatch_Answers400(string body)
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        await device.SubscribeAsync("$iothub/twin/res/#");
        await device.PublishAsync("$iothub/twin/PATCH/properties/reported/?$rid=9", body);
        var response = await device.ReceiveAsync("$iothub/twin/res/");
        Assert.Equal("$iothub/twin/res/400/?$rid=9", response.Topic);
        Assert.True(device.Client.IsConnected);
    }

    [Fact]
    public async Task Twin_ReportedPatchOver32KB_Answers413()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        await device.SubscribeAsync("$iothub/twin/res/#");
        await device.PublishAsync("$iothub/twin/PATCH/properties/reported/?$rid=3", $$"""{"blob":"{{new string('x', 33 * 1024)}}"}""");
        var response = await device.ReceiveAsync("$iothub/twin/res/");
        Assert.Equal("$iothub/twin/res/413/?$rid=3", response.Topic);
    }

    [Fact]
    public async Task Twin_DesiredPatchByService_NotifiesTheDeviceWithVersion()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        await device.SubscribeAsync("$iothub/twin/PATCH/properties/desired/#");
        var patch = await Service.SendAsync(HttpMethod.Patch, $"twins/{device.DeviceId}",
            new JsonObject { ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["led"] = "on", ["gone"] = null } } });
        Assert.Equal(HttpStatusCode.OK, patch.Status);
        var notification = await device.ReceiveAsync("$iothub/twin/PATCH/properties/desired/");
        Assert.Equal("$iothub/twin/PATCH/properties/desired/?$version=2", notification.Topic);
        var body = JsonNode.Parse(MqttTestDevice.Text(notification))!;
        Assert.Equal("on", body["led"]!.GetValue<string>());
        Assert.Equal(2, body["$version"]!.GetValue<long>());
    }

    private static async Task<string> NextAsync(System.Threading.Channels.Channel<string> channel) =>
        await channel.Reader.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
}
