using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace IoTHubMqtt.Firmware.Tests.Transport;

/// <summary>
/// A plain MQTTnet broker on 127.0.0.1 with TLS from a CA generated per test run: a wire to test the transport adapter on,
/// not an IoT Hub (it routes publishes to subscribers and checks one user name/password, nothing more).
/// </summary>
public sealed class LoopbackBroker : IAsyncDisposable
{
    private readonly MqttServer server;

    private LoopbackBroker(MqttServer server, int port, string caPem)
    {
        this.server = server;
        Port = port;
        CaPem = caPem;
    }

    public int Port { get; }

    /// <summary>PEM of the CA that signed the broker's certificate (for 127.0.0.1).</summary>
    public string CaPem { get; }

    public static async Task<LoopbackBroker> StartAsync(Func<string, string, bool>? authorize = null)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=IoTHubMqtt test root", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        // One clock reading for both: a certificate may not outlive its issuer (whose NotAfter is kept to the second).
        var now = DateTimeOffset.UtcNow;
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        serverRequest.CertificateExtensions.Add(san.Build());
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var signed = serverRequest.Create(ca, now.AddMinutes(-5), now.AddHours(23), [1, 2, 3, 4]);
        using var withKey = signed.CopyWithPrivateKey(serverKey);
        var serverCert = X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);

        var port = FreePort();
        var options = new MqttServerOptionsBuilder()
            .WithoutDefaultEndpoint()
            .WithEncryptedEndpoint()
            .WithEncryptedEndpointBoundIPAddress(IPAddress.Loopback)
            .WithEncryptedEndpointBoundIPV6Address(IPAddress.None)
            .WithEncryptedEndpointPort(port)
            .WithEncryptionCertificate(serverCert)
            .Build();
        var server = new MqttServerFactory().CreateMqttServer(options);
        server.ValidatingConnectionAsync += e =>
        {
            if (authorize is not null && !authorize(e.UserName, e.Password))
            {
                e.ReasonCode = MqttConnectReasonCode.BadUserNameOrPassword;
            }

            return Task.CompletedTask;
        };
        await server.StartAsync().ConfigureAwait(false);
        return new LoopbackBroker(server, port, ca.ExportCertificatePem());
    }

    public async ValueTask DisposeAsync()
    {
        await server.StopAsync().ConfigureAwait(false);
        server.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
