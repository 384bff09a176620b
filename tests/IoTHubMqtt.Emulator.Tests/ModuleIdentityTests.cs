using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;
using MQTTnet;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>Module identities: registry, MQTT connection as {deviceId}/{moduleId}, module telemetry, twin and methods.</summary>
public sealed class ModuleIdentityTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    private ServiceRestClient Service => fixture.Service;

    private async Task<(string DeviceId, string ModuleId, string Key)> CreateModuleAsync()
    {
        var (deviceId, _) = fixture.CreateDevice("modhost");
        var moduleId = "mod-" + Guid.NewGuid().ToString("N")[..6];
        var created = await Service.SendAsync(HttpMethod.Put, $"devices/{deviceId}/modules/{moduleId}", new JsonObject { ["deviceId"] = deviceId, ["moduleId"] = moduleId });
        Assert.Equal(HttpStatusCode.OK, created.Status);
        Assert.Equal(moduleId, created.Json!["moduleId"]!.GetValue<string>());
        return (deviceId, moduleId, created.Json["authentication"]!["symmetricKey"]!["primaryKey"]!.GetValue<string>());
    }

    private Task<MqttTestDevice> ConnectModuleAsync(string deviceId, string moduleId, string key)
    {
        var token = SasToken.CreateForTimeToLive(SasResource.ForModule(fixture.Emulator.HostName, deviceId, moduleId), key, TimeSpan.FromMinutes(10));
        var options = MqttTestDevice.Options(fixture.Emulator, deviceId, token)
            .WithClientId($"{deviceId}/{moduleId}")
            .WithCredentials($"{fixture.Emulator.HostName}/{deviceId}/{moduleId}/?api-version=2021-04-12", token)
            .Build();
        return MqttTestDevice.ConnectAsync(options, $"{deviceId}/{moduleId}");
    }

    [Fact]
    public async Task Module_ConnectsSendsTelemetryReportsTwinAndAnswersMethod()
    {
        var (deviceId, moduleId, key) = await CreateModuleAsync();
        await using var module = await ConnectModuleAsync(deviceId, moduleId, key);

        await module.PublishAsync($"devices/{deviceId}/modules/{moduleId}/messages/events/src=module", "from module");
        var read = await Service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={deviceId}&timeout=5");
        var message = Assert.Single(read.Json!["messages"]!.AsArray())!;
        Assert.Equal(moduleId, message["moduleId"]!.GetValue<string>());
        Assert.Equal("from module", Encoding.UTF8.GetString(Convert.FromBase64String(message["body"]!.GetValue<string>())));

        await module.SubscribeAsync("$iothub/twin/res/#");
        await module.PublishAsync("$iothub/twin/PATCH/properties/reported/?$rid=1", """{"ready":true}""");
        Assert.Equal("$iothub/twin/res/204/?$rid=1&$version=2", (await module.ReceiveAsync("$iothub/twin/res/")).Topic);
        var twin = await Service.SendAsync(HttpMethod.Get, $"twins/{deviceId}/modules/{moduleId}");
        Assert.True(twin.Json!["properties"]!["reported"]!["ready"]!.GetValue<bool>());
        var deviceTwin = await Service.SendAsync(HttpMethod.Get, $"twins/{deviceId}");
        Assert.Null(deviceTwin.Json!["properties"]!["reported"]!["ready"]);

        await module.SubscribeAsync("$iothub/methods/POST/#", MqttQualityOfServiceLevel.AtMostOnce);
        module.Client.ApplicationMessageReceivedAsync += async e =>
        {
            if (e.ApplicationMessage.Topic.StartsWith("$iothub/methods/POST/ping/", StringComparison.Ordinal))
            {
                await module.PublishAsync($"$iothub/methods/res/200/?$rid={e.ApplicationMessage.Topic.Split("$rid=")[1]}", "\"pong\"");
            }
        };
        var call = await Service.SendAsync(HttpMethod.Post, $"twins/{deviceId}/modules/{moduleId}/methods", new JsonObject { ["methodName"] = "ping", ["responseTimeoutInSeconds"] = 10 });
        Assert.Equal(HttpStatusCode.OK, call.Status);
        Assert.Equal("pong", call.Json!["payload"]!.GetValue<string>());
    }

    [Fact]
    public async Task Module_PublishingOnItsDevicesTopic_IsDisconnected()
    {
        var (deviceId, moduleId, key) = await CreateModuleAsync();
        await using var module = await ConnectModuleAsync(deviceId, moduleId, key);
        try
        {
            await module.PublishAsync($"devices/{deviceId}/messages/events/", "not mine").WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or TimeoutException or OperationCanceledException)
        {
        }

        await module.Disconnected.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Module_WithTheDeviceKey_IsRefused()
    {
        var (deviceId, moduleId, _) = await CreateModuleAsync();
        var deviceKey = fixture.Emulator.GetDevice(deviceId).PrimaryKey!;
        var token = SasToken.CreateForTimeToLive(SasResource.ForModule(fixture.Emulator.HostName, deviceId, moduleId), deviceKey, TimeSpan.FromMinutes(10));
        var options = MqttTestDevice.Options(fixture.Emulator, deviceId, token)
            .WithClientId($"{deviceId}/{moduleId}")
            .WithCredentials($"{fixture.Emulator.HostName}/{deviceId}/{moduleId}/?api-version=2021-04-12", token)
            .Build();
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, await MqttTestDevice.TryConnectAsync(options));
    }

    [Fact]
    public async Task DeletingTheDevice_RemovesItsModulesAndQueryListsDevicesOnly()
    {
        var (deviceId, moduleId, _) = await CreateModuleAsync();
        var list = await Service.SendAsync(HttpMethod.Get, $"devices/{deviceId}/modules");
        Assert.Equal(moduleId, Assert.Single(list.Json!.AsArray())!["moduleId"]!.GetValue<string>());
        var devices = await Service.SendAsync(HttpMethod.Get, "devices");
        Assert.DoesNotContain(devices.Json!.AsArray(), d => d!["moduleId"] is not null);

        Assert.Equal(HttpStatusCode.NoContent, (await Service.SendAsync(HttpMethod.Delete, $"devices/{deviceId}", headers: new Dictionary<string, string> { ["If-Match"] = "*" })).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Service.SendAsync(HttpMethod.Get, $"devices/{deviceId}/modules/{moduleId}")).Status);
    }

    [Fact]
    public async Task Module_OnAnUnknownDevice_Is404()
    {
        var response = await Service.SendAsync(HttpMethod.Put, $"devices/{fixture.NewDeviceId()}/modules/m1", new JsonObject());
        Assert.Equal(HttpStatusCode.NotFound, response.Status);
    }
}
