using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>X.509 client certificates and WebSockets through an HTTP proxy, against the emulator.</summary>
public sealed class DeviceClientTransportTests(EmulatorFixture hub) : IClassFixture<EmulatorFixture>
{
    [Fact]
    public async Task X509Certificate_RegisteredThumbprint_ConnectsAndSendsTelemetry()
    {
        using var certificate = SelfSigned("x509-device");
        var id = hub.NewDeviceId("x509");
        hub.Emulator.CreateX509Device(id, certificate.Thumbprint);
        await using var client = new IoTHubDeviceClient(X509Options(id, certificate));

        await client.ConnectAsync(TestContext.Current.CancellationToken);
        await client.SendTelemetryAsync(TelemetryMessage.FromText("signed by a certificate"), TestContext.Current.CancellationToken);

        Assert.Null(client.TokenExpiresAt);
        Assert.Equal("signed by a certificate", HubProbe.Body(Assert.Single(await HubProbe.TelemetryAsync(hub.Service, id, 1, TimeSpan.FromSeconds(10)))));
    }

    [Fact]
    public async Task X509Certificate_NotTheRegisteredOne_IsUnauthorizedNamingTheThumbprint()
    {
        using var registered = SelfSigned("registered");
        using var other = SelfSigned("other");
        var id = hub.NewDeviceId("x509");
        hub.Emulator.CreateX509Device(id, registered.Thumbprint);
        await using var client = new IoTHubDeviceClient(X509Options(id, other));

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => client.ConnectAsync(TestContext.Current.CancellationToken));

        Assert.Equal("IoTHubUnauthorized", ex.ErrorId);
        Assert.Contains(other.Thumbprint, ex.Message, StringComparison.Ordinal);
        Assert.Contains("thumbprint", ex.RecommendedAction, StringComparison.Ordinal);
        Assert.Equal(IoTHubConnectionState.Disconnected, client.State);
    }

    [Fact]
    public async Task WebSocket_ThroughAnHttpProxy_TunnelsToTheHub()
    {
        await using var proxy = new HttpConnectProxy();
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with
        {
            Transport = IoTHubTransport.WebSocket, Port = hub.Emulator.WebSocketPort, Proxy = new WebProxy(proxy.Address),
        });

        await client.ConnectAsync(TestContext.Current.CancellationToken);
        await client.SendTelemetryAsync(TelemetryMessage.FromText("via the proxy"), TestContext.Current.CancellationToken);

        Assert.Equal(1, proxy.TunnelCount);
        Assert.Equal($"{hub.Emulator.HostName}:{hub.Emulator.WebSocketPort}", Assert.Single(proxy.Targets));
        Assert.Equal("via the proxy", HubProbe.Body(Assert.Single(await HubProbe.TelemetryAsync(hub.Service, id, 1, TimeSpan.FromSeconds(10)))));
    }

    [Fact]
    public async Task WebSocket_ThroughAProxyNeedingCredentials_SendsThem()
    {
        var credential = new NetworkCredential("proxy-user", "proxy-pass");
        await using var proxy = new HttpConnectProxy(credential);
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with
        {
            Transport = IoTHubTransport.WebSocket, Port = hub.Emulator.WebSocketPort, Proxy = new WebProxy(proxy.Address) { Credentials = credential },
        });

        await client.ConnectAsync(TestContext.Current.CancellationToken);
        await client.SendTelemetryAsync(TelemetryMessage.FromText("via an authenticated proxy"), TestContext.Current.CancellationToken);

        Assert.Equal(1, proxy.TunnelCount);
    }

    internal static X509Certificate2 SelfSigned(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={subject}", key, HashAlgorithmName.SHA256);
        using var ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), null);
    }

    private IoTHubDeviceClientOptions X509Options(string id, X509Certificate2 certificate) => new()
    {
        HostName = hub.Emulator.HostName,
        DeviceId = id,
        ClientCertificate = certificate,
        Port = hub.Emulator.MqttTlsPort,
        CaCertificatePath = hub.Emulator.CaCertificatePath,
        OperationTimeout = TimeSpan.FromSeconds(10),
    };
}
