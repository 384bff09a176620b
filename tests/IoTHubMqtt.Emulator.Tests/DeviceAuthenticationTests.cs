using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;

namespace IoTHubMqtt.Emulator.Tests;

public sealed class DeviceAuthenticationTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    private IoTHubEmulator Emulator => fixture.Emulator;

    [Fact]
    public async Task Connect_WithPrimaryKeySas_Succeeds()
    {
        var (id, key) = fixture.CreateDevice();
        var code = await MqttTestDevice.TryConnectAsync(MqttTestDevice.Options(Emulator, id, MqttTestDevice.Token(Emulator, id, key)).Build());
        Assert.Equal(MqttClientConnectResultCode.Success, code);
    }

    [Theory]
    [InlineData("{0}/{1}/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.0&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1")]
    [InlineData("{0}/{1}/api-version=2016-11-14")]
    [InlineData("{0}/{1}/?api-version=2018-06-30")]
    public async Task Connect_WithUserNameVariantsClientsSend_Succeeds(string userNameFormat)
    {
        var (id, key) = fixture.CreateDevice();
        var userName = string.Format(System.Globalization.CultureInfo.InvariantCulture, userNameFormat, Emulator.HostName, id);
        var options = MqttTestDevice.Options(Emulator, id, MqttTestDevice.Token(Emulator, id, key))
            .WithCredentials(userName, MqttTestDevice.Token(Emulator, id, key)).Build();
        Assert.Equal(MqttClientConnectResultCode.Success, await MqttTestDevice.TryConnectAsync(options));
    }

    [Fact]
    public async Task Connect_WithSecondaryKeySas_Succeeds()
    {
        var (id, _) = fixture.CreateDevice();
        var secondary = Emulator.GetDevice(id).SecondaryKey!;
        var code = await MqttTestDevice.TryConnectAsync(MqttTestDevice.Options(Emulator, id, MqttTestDevice.Token(Emulator, id, secondary)).Build());
        Assert.Equal(MqttClientConnectResultCode.Success, code);
    }

    [Fact]
    public async Task Connect_WithDevicePolicyToken_Succeeds()
    {
        var (id, _) = fixture.CreateDevice();
        var policyKey = Emulator.Hub.Policies["device"].PrimaryKey;
        var token = SasToken.CreateForTimeToLive(Emulator.HostName, policyKey, TimeSpan.FromMinutes(10), "device");
        var code = await MqttTestDevice.TryConnectAsync(MqttTestDevice.Options(Emulator, id, token).Build());
        Assert.Equal(MqttClientConnectResultCode.Success, code);
    }

    [Fact]
    public async Task Connect_WithServicePolicyToken_IsRefused()
    {
        var (id, _) = fixture.CreateDevice();
        var policyKey = Emulator.Hub.Policies["service"].PrimaryKey;
        var token = SasToken.CreateForTimeToLive(Emulator.HostName, policyKey, TimeSpan.FromMinutes(10), "service");
        var code = await MqttTestDevice.TryConnectAsync(MqttTestDevice.Options(Emulator, id, token).Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, code);
    }

    [Fact]
    public async Task Connect_WithWrongKey_IsRefusedNotAuthorized()
    {
        var (id, _) = fixture.CreateDevice();
        var token = MqttTestDevice.Token(Emulator, id, SharedAccessKeys.Generate());
        var code = await MqttTestDevice.TryConnectAsync(MqttTestDevice.Options(Emulator, id, token).Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, code);
    }

    [Fact]
    public async Task Connect_WithTokenForAnotherDevice_IsRefused()
    {
        var (id, _) = fixture.CreateDevice();
        var (other, otherKey) = fixture.CreateDevice();
        var code = await MqttTestDevice.TryConnectAsync(MqttTestDevice.Options(Emulator, id, MqttTestDevice.Token(Emulator, other, otherKey)).Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, code);
    }

    [Fact]
    public async Task Connect_WithTokenExpiredBeyondSkew_IsRefused()
    {
        var (id, key) = fixture.CreateDevice();
        var expired = DateTimeOffset.UtcNow.AddMinutes(-6).ToUnixTimeSeconds();
        var token = SasToken.CreateAt(SasResource.ForDevice(Emulator.HostName, id), SharedAccessKeys.Decode(key), expired);
        var code = await MqttTestDevice.TryConnectAsync(MqttTestDevice.Options(Emulator, id, token).Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, code);
    }

    [Fact]
    public async Task Connect_WithTokenExpiredWithinSkew_Succeeds()
    {
        var (id, key) = fixture.CreateDevice();
        var recent = DateTimeOffset.UtcNow.AddMinutes(-2).ToUnixTimeSeconds();
        var token = SasToken.CreateAt(SasResource.ForDevice(Emulator.HostName, id), SharedAccessKeys.Decode(key), recent);
        var code = await MqttTestDevice.TryConnectAsync(MqttTestDevice.Options(Emulator, id, token).Build());
        Assert.Equal(MqttClientConnectResultCode.Success, code);
    }

    [Fact]
    public async Task Connect_WithClientIdNotMatchingUserName_IsRefused()
    {
        var (id, key) = fixture.CreateDevice();
        var options = MqttTestDevice.Options(Emulator, id, MqttTestDevice.Token(Emulator, id, key)).WithClientId(id + "x").Build();
        var code = await MqttTestDevice.TryConnectAsync(options);
        Assert.Equal(MqttClientConnectResultCode.ClientIdentifierNotValid, code);
    }

    [Fact]
    public async Task Connect_UnregisteredDevice_IsRefused()
    {
        var id = fixture.NewDeviceId();
        var code = await MqttTestDevice.TryConnectAsync(MqttTestDevice.Options(Emulator, id, MqttTestDevice.Token(Emulator, id, SharedAccessKeys.Generate())).Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, code);
    }

    [Fact]
    public async Task Connect_GarbagePassword_IsRefused()
    {
        var (id, _) = fixture.CreateDevice();
        var code = await MqttTestDevice.TryConnectAsync(MqttTestDevice.Options(Emulator, id, "SharedAccessSignature sr=x&sig=%%%&se=abc").Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, code);
    }

    [Fact]
    public async Task Connect_UserNameForAnotherHub_IsRefused()
    {
        var (id, key) = fixture.CreateDevice();
        var options = MqttTestDevice.Options(Emulator, id, MqttTestDevice.Token(Emulator, id, key))
            .WithCredentials($"otherhub.azure-devices.net/{id}/?api-version=2021-04-12", MqttTestDevice.Token(Emulator, id, key)).Build();
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, await MqttTestDevice.TryConnectAsync(options));
    }

    [Fact]
    public async Task Connect_DisabledDevice_IsRefused()
    {
        var (id, key) = fixture.CreateDevice();
        var response = await fixture.Service.SendAsync(HttpMethod.Put, $"devices/{id}",
            new System.Text.Json.Nodes.JsonObject { ["deviceId"] = id, ["status"] = "disabled" }, new Dictionary<string, string> { ["If-Match"] = "*" });
        Assert.Equal(System.Net.HttpStatusCode.OK, response.Status);
        var code = await MqttTestDevice.TryConnectAsync(MqttTestDevice.Options(Emulator, id, MqttTestDevice.Token(Emulator, id, key)).Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, code);
    }

    [Fact]
    public async Task Connection_WhenDeviceDeleted_IsClosed()
    {
        var device = await fixture.ConnectNewDeviceAsync();
        await using var _ = device;
        var response = await fixture.Service.SendAsync(HttpMethod.Delete, $"devices/{device.DeviceId}", headers: new Dictionary<string, string> { ["If-Match"] = "*" });
        Assert.Equal(System.Net.HttpStatusCode.NoContent, response.Status);
        await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(device.Client.IsConnected);
    }

    [Fact]
    public async Task Connection_WhenTokenExpires_IsClosedByTheHub_AfterTheClockSkew()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var hub = EmulatorFixture.Start(o => o.TimeProvider = clock); // the hub's five minutes of skew
        var (id, key) = hub.CreateDevice();
        var options = MqttTestDevice.Options(hub.Emulator, id, MqttTestDevice.Token(hub.Emulator, id, key, TimeSpan.FromMinutes(10))).Build();
        await using var device = await MqttTestDevice.ConnectAsync(options, id);
        await device.SubscribeAsync("$iothub/twin/res/#");

        clock.Advance(TimeSpan.FromMinutes(14)); // expired, but within the skew: still served
        await device.PublishAsync("$iothub/twin/GET/?$rid=1", "");
        Assert.Equal("$iothub/twin/res/200/?$rid=1", (await device.ReceiveAsync("$iothub/twin/res/")).Topic);
        Assert.False(device.Disconnected.IsCompleted);

        clock.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(device.Client.IsConnected);
        Assert.Contains(hub.Log, line => line.Contains("SAS token expired", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Connect_X509DeviceWithRegisteredThumbprint_Succeeds()
    {
        using var key = System.Security.Cryptography.ECDsa.Create();
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=x509dev", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        using var selfSigned = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var cert = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(selfSigned.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pfx), null);
        var id = fixture.NewDeviceId("x509");
        Emulator.CreateX509Device(id, cert.Thumbprint);
        var trust = fixture.Trust;
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer("localhost", Emulator.MqttTlsPort)
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V311)
            .WithClientId(id)
            .WithCredentials($"{Emulator.HostName}/{id}/?api-version=2021-04-12", (string?)null)
            .WithTlsOptions(o => o.UseTls().WithClientCertificates([cert]).WithCertificateValidationHandler(e => trust.Validate(e.Certificate, e.SslPolicyErrors)))
            .Build();
        Assert.Equal(MqttClientConnectResultCode.Success, await MqttTestDevice.TryConnectAsync(options));

        var other = fixture.NewDeviceId("x509");
        Emulator.CreateX509Device(other, new string('A', 40));
        var wrong = new MqttClientOptionsBuilder()
            .WithTcpServer("localhost", Emulator.MqttTlsPort)
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V311)
            .WithClientId(other)
            .WithCredentials($"{Emulator.HostName}/{other}/?api-version=2021-04-12", (string?)null)
            .WithTlsOptions(o => o.UseTls().WithClientCertificates([cert]).WithCertificateValidationHandler(e => trust.Validate(e.Certificate, e.SslPolicyErrors)))
            .Build();
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, await MqttTestDevice.TryConnectAsync(wrong));
    }
}
