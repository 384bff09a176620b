using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Tests;

public sealed class ProvisioningTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    private IoTHubEmulator Emulator => fixture.Emulator;

    [Fact]
    public async Task Register_WithGroupDerivedKey_AssignsAndCreatesTheDevice()
    {
        var group = "grp-" + Guid.NewGuid().ToString("N")[..8];
        var groupKey = Emulator.AddEnrollmentGroup(group);
        var registrationId = fixture.NewDeviceId("reg");
        var deviceKey = SharedAccessKeys.DeriveDeviceKey(groupKey, registrationId);

        var state = await RegisterAsync(registrationId, deviceKey);
        Assert.Equal("assigned", state["status"]!.GetValue<string>());
        Assert.Equal(Emulator.HostName, state["registrationState"]!["assignedHub"]!.GetValue<string>());
        Assert.Equal(registrationId, state["registrationState"]!["deviceId"]!.GetValue<string>());

        await using var device = await MqttTestDevice.ConnectAsync(Emulator, registrationId, deviceKey);
        Assert.True(device.Client.IsConnected);
    }

    [Fact]
    public async Task Register_WithIndividualEnrollment_UsesItsDeviceId()
    {
        var registrationId = fixture.NewDeviceId("ind");
        var deviceId = fixture.NewDeviceId("assigned");
        var key = Emulator.AddIndividualEnrollment(registrationId, deviceId: deviceId);
        var state = await RegisterAsync(registrationId, key);
        Assert.Equal(deviceId, state["registrationState"]!["deviceId"]!.GetValue<string>());
        Assert.Equal(key, Emulator.GetDevice(deviceId).PrimaryKey);
    }

    [Fact]
    public async Task Register_WithWrongKey_IsRefused()
    {
        Emulator.AddEnrollmentGroup("grp-" + Guid.NewGuid().ToString("N")[..8]);
        var registrationId = fixture.NewDeviceId("bad");
        var token = SasToken.CreateForTimeToLive(SasResource.ForDpsRegistration(Emulator.IdScope, registrationId), SharedAccessKeys.Generate(), TimeSpan.FromMinutes(5), "registration");
        var code = await MqttTestDevice.TryConnectAsync(DpsOptions(registrationId, token));
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, code);
    }

    private MqttClientOptions DpsOptions(string registrationId, string token) => new MqttClientOptionsBuilder()
        .WithTcpServer("localhost", Emulator.DpsPort)
        .WithProtocolVersion(MqttProtocolVersion.V311)
        .WithClientId(registrationId)
        .WithCredentials($"{Emulator.IdScope}/registrations/{registrationId}/api-version=2019-03-31", token)
        .WithTimeout(TimeSpan.FromSeconds(10))
        .WithTlsOptions(o => o.UseTls().WithCertificateValidationHandler(e => fixture.Trust.Validate(e.Certificate, e.SslPolicyErrors)))
        .Build();

    private async Task<JsonNode> RegisterAsync(string registrationId, string key)
    {
        var token = SasToken.CreateForTimeToLive(SasResource.ForDpsRegistration(Emulator.IdScope, registrationId), key, TimeSpan.FromMinutes(5), "registration");
        await using var client = await MqttTestDevice.ConnectAsync(DpsOptions(registrationId, token), registrationId);
        await client.SubscribeAsync("$dps/registrations/res/#");
        await client.PublishAsync("$dps/registrations/PUT/iotdps-register/?$rid=1", $$"""{"registrationId":"{{registrationId}}"}""");
        var accepted = await client.ReceiveAsync("$dps/registrations/res/");
        Assert.StartsWith("$dps/registrations/res/202/?$rid=1&retry-after=", accepted.Topic, StringComparison.Ordinal);
        var operation = JsonNode.Parse(MqttTestDevice.Text(accepted))!;
        Assert.Equal("assigning", operation["status"]!.GetValue<string>());
        var operationId = operation["operationId"]!.GetValue<string>();

        for (var attempt = 2; attempt < 10; attempt++)
        {
            await client.PublishAsync($"$dps/registrations/GET/iotdps-get-operationstatus/?$rid={attempt}&operationId={operationId}", "", MqttQualityOfServiceLevel.AtMostOnce);
            var status = await client.ReceiveAsync("$dps/registrations/res/");
            if (status.Topic.StartsWith("$dps/registrations/res/200/", StringComparison.Ordinal))
            {
                return JsonNode.Parse(MqttTestDevice.Text(status))!;
            }

            await Task.Delay(200);
        }

        throw new TimeoutException("The registration was not assigned.");
    }
}
