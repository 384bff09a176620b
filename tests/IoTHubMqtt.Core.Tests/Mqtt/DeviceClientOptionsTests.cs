using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;

namespace IoTHubMqtt.Core.Tests.Mqtt;

public sealed class DeviceClientOptionsTests
{
    [Fact]
    public void FromConnectionString_Device_FillsIdentityAndKey()
    {
        var options = IoTHubDeviceClientOptions.FromConnectionString("HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKey=cGFzc3dvcmQ=;GatewayHostName=gw.local");

        Assert.Equal("h.azure-devices.net", options.HostName);
        Assert.Equal("gw.local", options.EffectiveConnectHost);
        Assert.Equal(8883, options.EffectivePort);
        Assert.Equal("h.azure-devices.net/devices/d1", options.ResourceUri);
    }

    [Fact]
    public void ToStringAndWith_NeverShowTheKey()
    {
        var options = IoTHubDeviceClientOptions.FromConnectionString("HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKey=c2VjcmV0LWtleS1tYXRlcmlhbA==") with { Port = 9999 };

        Assert.Equal("d1@h.azure-devices.net:9999 (Mqtt)", options.ToString());
        Assert.Equal("c2VjcmV0LWtleS1tYXRlcmlhbA==", options.SharedAccessKey);
    }

    [Fact]
    public void Proxy_WithoutTheWebSocketTransport_IsRejected()
    {
        var options = IoTHubDeviceClientOptions.FromConnectionString("HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKey=cGFzc3dvcmQ=") with
        {
            Proxy = new System.Net.WebProxy("http://127.0.0.1:3128"),
        };

        var ex = Assert.Throws<IoTHubMqttException>(options.Validate);

        Assert.Equal("ProxyRequiresWebSocket", ex.ErrorId);
        (options with { Transport = IoTHubTransport.WebSocket }).Validate();
    }

    [Fact]
    public void FromConnectionString_Policy_IsRejected()
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => IoTHubDeviceClientOptions.FromConnectionString("HostName=h.net;SharedAccessKeyName=owner;SharedAccessKey=cGFzc3dvcmQ="));

        Assert.Equal("ConnectionStringNotDevice", ex.ErrorId);
    }

    [Theory]
    [InlineData(IoTHubTransport.Mqtt, 8883)]
    [InlineData(IoTHubTransport.WebSocket, 443)]
    [InlineData(IoTHubTransport.MqttNoTls, 1883)]
    public void EffectivePort_DefaultsByTransport(IoTHubTransport transport, int port)
    {
        var options = new IoTHubDeviceClientOptions { HostName = "h.net", DeviceId = "d", SharedAccessKey = "cGFzc3dvcmQ=", Transport = transport };

        Assert.Equal(port, options.EffectivePort);
    }

    [Fact]
    public void Validate_NoCredential_Throws()
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => new IoTHubDeviceClientOptions { HostName = "h.net", DeviceId = "d" }.Validate());

        Assert.Equal("CredentialMissing", ex.ErrorId);
    }

    [Fact]
    public void Validate_ExpiredToken_IsUnauthorized()
    {
        var token = SasToken.CreateAt("h.net/devices/d", Convert.FromBase64String("cGFzc3dvcmQ="), DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeSeconds());

        var ex = Assert.Throws<IoTHubMqttException>(() => new IoTHubDeviceClientOptions { HostName = "h.net", DeviceId = "d", SharedAccessSignature = token }.Validate());

        Assert.Equal("SasTokenExpired", ex.ErrorId);
        Assert.Equal(IoTHubErrorKind.Unauthorized, ex.Kind);
    }

    [Fact]
    public void Validate_KeepAliveOverHubLimit_Throws()
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => new IoTHubDeviceClientOptions { HostName = "h.net", DeviceId = "d", SharedAccessKey = "cGFzc3dvcmQ=", KeepAlive = TimeSpan.FromSeconds(1200) }.Validate());

        Assert.Equal("KeepAliveTooLong", ex.ErrorId);
    }

    [Fact]
    public void Validate_MissingCaFile_IsNotFound()
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => new IoTHubDeviceClientOptions { HostName = "h.net", DeviceId = "d", SharedAccessKey = "cGFzc3dvcmQ=", CaCertificatePath = "/no/such/ca.pem" }.Validate());

        Assert.Equal("CaCertificateNotFound", ex.ErrorId);
    }

    [Fact]
    public void PublicHubRoots_AreEmbedded()
    {
        var subjects = TlsTrust.PublicHubRoots.Select(c => c.Subject).ToList();

        Assert.Contains(subjects, s => s.Contains("DigiCert Global Root G2", StringComparison.Ordinal));
        Assert.Contains(subjects, s => s.Contains("Microsoft RSA Root Certificate Authority 2017", StringComparison.Ordinal));
        Assert.DoesNotContain(subjects, s => s.Contains("Baltimore", StringComparison.Ordinal));
    }

    [Fact]
    public void Backoff_GrowsWithJitterUpToTheCap()
    {
        var backoff = new Backoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(8));

        var delays = Enumerable.Range(0, 8).Select(_ => backoff.Next().TotalSeconds).ToList();

        Assert.InRange(delays[0], 0.5, 1.0);
        Assert.InRange(delays[1], 1.0, 2.0);
        Assert.InRange(delays[2], 2.0, 4.0);
        Assert.All(delays.Skip(3), d => Assert.InRange(d, 4.0, 8.0));
    }
}
