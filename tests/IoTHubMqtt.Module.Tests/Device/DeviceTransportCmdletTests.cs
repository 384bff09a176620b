using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IoTHubMqtt.Module.Tests.Harness;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Module.Tests.Device;

/// <summary>Connect-IoTHub with an X.509 client certificate and through an HTTP proxy; Send-IoTHubMessage against a throttling hub.</summary>
public sealed class DeviceTransportCmdletTests : DeviceCmdletTestBase
{
    [Fact]
    public async Task Connect_Certificate_RegisteredThumbprint_SendsTelemetry()
    {
        using var certificate = SelfSigned("cmdlet-x509");
        var result = Ps.Invoke("""
            $x509Id = 'x509-' + $deviceId
            $hub.CreateX509Device($x509Id, $cert.Thumbprint)
            $c = Connect-IoTHub -HostName $hub.HostName -DeviceId $x509Id -Certificate $cert -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault
            Send-IoTHubMessage 'from a certificate' -Connection $c -PassThru
            $c.State
            $c | Disconnect-IoTHub -Confirm:$false
            """, PowerShellSession.Vars(("cert", certificate)));

        Assert.Empty(result.AllErrors);
        Assert.Equal("Connected", result.Output.Last().BaseObject);
        Assert.Contains("from a certificate", await Service.TelemetryBodiesAsync("x509-" + DeviceId, 1, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void Connect_Certificate_NotRegistered_IsUnauthorizedNamingTheThumbprint()
    {
        using var registered = SelfSigned("registered");
        using var other = SelfSigned("other");
        var result = Ps.Invoke("""
            $x509Id = 'x509-' + $deviceId
            $hub.CreateX509Device($x509Id, $registered.Thumbprint)
            Connect-IoTHub -HostName $hub.HostName -DeviceId $x509Id -Certificate $other -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault -Timeout 10
            """, PowerShellSession.Vars(("registered", registered), ("other", other)));

        var error = Assert.Single(result.AllErrors);
        Assert.Equal("IoTHubUnauthorized,IoTHubMqtt.Commands.Device.ConnectIoTHubCommand", error.FullyQualifiedErrorId);
        Assert.Contains(other.Thumbprint, error.Exception.Message, StringComparison.Ordinal);
        Assert.Contains("thumbprint", error.ErrorDetails.RecommendedAction, StringComparison.Ordinal);
        Assert.Empty(result.Output);
    }

    [Fact]
    public async Task Connect_WebSocketThroughProxy_TrafficGoesThroughTheTunnel()
    {
        await using var proxy = new HttpConnectProxy();
        var result = Ps.Invoke("""
            $wsId = 'ws-' + $deviceId
            $wsCs = $hub.CreateDevice($wsId).ConnectionString
            $c = Connect-IoTHub -ConnectionString $wsCs -Transport WebSocket -Port $hub.WebSocketPort -CaCertificatePath $hub.CaCertificatePath -Proxy $proxyUri -NoDefault
            Send-IoTHubMessage 'through the proxy' -Connection $c
            $c.Transport
            $c | Disconnect-IoTHub -Confirm:$false
            """, PowerShellSession.Vars(("proxyUri", proxy.Address)));

        Assert.Empty(result.AllErrors);
        Assert.Equal(1, proxy.TunnelCount);
        Assert.EndsWith(":" + Ps.Invoke("$hub.WebSocketPort").Output[0].BaseObject, Assert.Single(proxy.Targets), StringComparison.Ordinal);
        Assert.Contains("through the proxy", await Service.TelemetryBodiesAsync("ws-" + DeviceId, 1, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task OneOffSend_WebSocketThroughAProxyWithCredentials_TrafficGoesThroughTheTunnel()
    {
        var credential = new System.Net.NetworkCredential("proxy-user", "proxy-pass");
        await using var proxy = new HttpConnectProxy(credential);
        var result = Ps.Invoke("""
            $wsId = 'ws1-' + $deviceId
            $wsCs = $hub.CreateDevice($wsId).ConnectionString
            $cred = [pscredential]::new('proxy-user', [Net.NetworkCredential]::new('', 'proxy-pass').SecurePassword)
            Send-IoTHubMessage 'one-off through the proxy' -ConnectionString $wsCs -Transport WebSocket -Port $hub.WebSocketPort -CaCertificatePath $hub.CaCertificatePath -Proxy $proxyUri -ProxyCredential $cred -PassThru
            """, PowerShellSession.Vars(("proxyUri", proxy.Address)));

        Assert.Empty(result.AllErrors);
        Assert.Single(result.Output);
        Assert.Equal(1, proxy.TunnelCount);
        Assert.DoesNotContain("proxy-pass", result.AllText(), StringComparison.Ordinal);
        Assert.Contains("one-off through the proxy", await Service.TelemetryBodiesAsync("ws1-" + DeviceId, 1, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void Connect_ProxyWithTheMqttTransport_IsAClearError()
    {
        var result = Ps.Invoke("Connect-IoTHub -ConnectionString $cs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -Proxy 'http://127.0.0.1:3128' -NoDefault");

        Assert.Equal("ProxyRequiresWebSocket,IoTHubMqtt.Commands.Device.ConnectIoTHubCommand", Assert.Single(result.AllErrors).FullyQualifiedErrorId);
        Assert.Empty(result.Output);
    }

    [Fact]
    public void OneOffSend_ProxyWithTheMqttTransport_IsAClearError()
    {
        var result = Ps.Invoke("Send-IoTHubMessage 'x' -ConnectionString $cs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -Proxy 'http://127.0.0.1:3128'");

        Assert.Equal("ProxyRequiresWebSocket,IoTHubMqtt.Commands.Device.SendIoTHubMessageCommand", Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public async Task Send_ThrottlingHub_BacksOffAndEveryMessageArrives()
    {
        // The emulator closes the connection of a device over 50 messages a second, as IoT Hub does to a throttled
        // MQTT 3.1.1 device; the cmdlet's connection reconnects with growing pauses and sends what was not acknowledged.
        var result = Ps.Invoke("""
            # -Timeout: how long the connection may stay down before sends fail; reconnecting on a loaded machine
            # (a TLS handshake a try, with growing pauses) must not run into the default 30 s.
            $throttledCs = $hub.CreateDevice('throttled-' + $deviceId).ConnectionString
            $throttled = Connect-IoTHub -ConnectionString $throttledCs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -Timeout 300 -NoDefault
            $hub.DeviceOperationsPerSecond = 50
            1..150 | ForEach-Object { "t$_" } | Send-IoTHubMessage -Connection $throttled -PassThru
            $hub.DeviceOperationsPerSecond = 0
            $throttled.ReconnectCount
            $throttled | Disconnect-IoTHub -Confirm:$false
            """, timeout: TimeSpan.FromMinutes(5));

        Assert.Empty(result.AllErrors);
        Assert.Equal(151, result.Output.Count);
        Assert.True((int)result.Output[150].BaseObject >= 1, "the hub never closed the connection: the fault did not apply");
        var bodies = await Service.TelemetryBodiesAsync("throttled-" + DeviceId, 150, TimeSpan.FromSeconds(20));
        Assert.Empty(Enumerable.Range(1, 150).Select(i => $"t{i}").Except(bodies));
    }

    [Fact]
    public void TwinCmdlets_ThrottlingHub_SucceedAfterThe429s()
    {
        var result = Ps.Invoke("""
            $hub.DeviceOperationsPerSecond = 1
            1..4 | ForEach-Object { Update-IoTHubTwin @{ "p$_" = $_ } } | ForEach-Object { $_.ReportedVersion }
            (Get-IoTHubTwin).Reported.p4
            $hub.DeviceOperationsPerSecond = 0
            """, timeout: TimeSpan.FromMinutes(5));

        Assert.Empty(result.AllErrors);
        Assert.Equal(5, result.Output.Count);
        Assert.Equal(4L, Convert.ToInt64(result.Output[4].BaseObject, System.Globalization.CultureInfo.InvariantCulture));
    }

    private static X509Certificate2 SelfSigned(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={subject}", key, HashAlgorithmName.SHA256);
        using var ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), null);
    }
}
