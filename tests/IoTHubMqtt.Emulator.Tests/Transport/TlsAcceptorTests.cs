using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IoTHubMqtt.Emulator.Transport;

namespace IoTHubMqtt.Emulator.Tests.Transport;

/// <summary>
/// The one TLS acceptor every listener uses, on real loopback sockets: the certificate served, ALPN and the client
/// certificate per profile, and handshakes that fail, stall or are cut short by the listener stopping (closed, logged
/// with the listener's name, never thrown).
/// </summary>
public sealed class TlsAcceptorTests : IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(2);
    private readonly X509Certificate2 serverCertificate = SelfSigned("CN=localhost", serverAuth: true);
    private readonly ConcurrentQueue<string> log = new();
    private readonly TlsAcceptor acceptor;
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);

    public TlsAcceptorTests()
    {
        acceptor = new TlsAcceptor(serverCertificate, new EmulatorLog((level, line) => log.Enqueue($"[{level}] {line}")));
        listener.Start();
    }

    public void Dispose()
    {
        listener.Stop();
        listener.Dispose();
        serverCertificate.Dispose();
    }

    [Fact]
    public async Task Https_NegotiatesHttp11_ServesTheHubCertificate_AndCarriesData()
    {
        var ct = TestContext.Current.CancellationToken;
        using var pair = await ConnectAsync(ct);
        await using var clientTls = new SslStream(pair.Client.GetStream(), false, (_, _, _, _) => true);
        var clientSide = clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
        }, ct);

        await using var accepted = await acceptor.AcceptAsync(new NetworkStream(pair.Server, ownsSocket: false), pair.Server.RemoteEndPoint, TlsProfile.Https, ct).WaitAsync(HangGuard, ct);
        await clientSide.WaitAsync(HangGuard, ct);

        Assert.NotNull(accepted);
        Assert.Equal(SslApplicationProtocol.Http11, accepted.NegotiatedApplicationProtocol);
        Assert.Equal(serverCertificate.Thumbprint, new X509Certificate2(clientTls.RemoteCertificate!).Thumbprint);
        Assert.Null(TlsAcceptor.ClientCertificateOf(accepted));
        await clientTls.WriteAsync("ping"u8.ToArray(), ct);
        var buffer = new byte[4];
        await accepted.ReadExactlyAsync(buffer, ct);
        Assert.Equal("ping"u8.ToArray(), buffer);
    }

    [Fact]
    public async Task Mqtt_AsksForAClientCertificate_AndHandsOverTheOneSent()
    {
        var ct = TestContext.Current.CancellationToken;
        using var deviceCertificate = SelfSigned("CN=device-x509", serverAuth: false);
        using var pair = await ConnectAsync(ct);
        await using var clientTls = new SslStream(pair.Client.GetStream(), false, (_, _, _, _) => true);
        var clientSide = clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ClientCertificates = [deviceCertificate],
        }, ct);

        await using var accepted = await acceptor.AcceptAsync(new NetworkStream(pair.Server, ownsSocket: false), pair.Server.RemoteEndPoint, TlsProfile.Mqtt, ct).WaitAsync(HangGuard, ct);
        await clientSide.WaitAsync(HangGuard, ct);

        Assert.NotNull(accepted);
        Assert.Equal(deviceCertificate.Thumbprint, TlsAcceptor.ClientCertificateOf(accepted)?.Thumbprint);
    }

    [Fact]
    public async Task Mqtt_NegotiatesTls12_AsTheHubDoes_WithAClientOfferingTls13Too()
    {
        var ct = TestContext.Current.CancellationToken;
        using var pair = await ConnectAsync(ct);
        await using var tls = await MqttHandshakeAsync(pair, ct);

        Assert.Equal(System.Security.Authentication.SslProtocols.Tls12, tls.Accepted.SslProtocol);
        Assert.Equal(System.Security.Authentication.SslProtocols.Tls12, tls.Client.SslProtocol);
    }

    [Fact]
    public async Task ClientInsistingOnTls13_IsRefusedAndLogged_AsTheHubRefusesIt()
    {
        var ct = TestContext.Current.CancellationToken;
        using var pair = await ConnectAsync(ct);
        await using var clientTls = new SslStream(pair.Client.GetStream(), false, (_, _, _, _) => true);
        var clientSide = clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls13,
        }, ct);

        var accepted = await acceptor.AcceptAsync(new NetworkStream(pair.Server, ownsSocket: true), pair.Server.RemoteEndPoint, TlsProfile.Mqtt, ct).WaitAsync(HangGuard, ct);

        Assert.Null(accepted);
        await Assert.ThrowsAnyAsync<Exception>(() => clientSide.WaitAsync(HangGuard, ct));
        Assert.Contains(log, line => line.StartsWith("[Verbose] MQTT/TLS: TLS handshake from 127.0.0.1:", StringComparison.Ordinal) && line.Contains("failed (", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Mqtt_WithoutAClientCertificate_IsAcceptedToo()
    {
        var ct = TestContext.Current.CancellationToken;
        using var pair = await ConnectAsync(ct);
        await using var tls = await MqttHandshakeAsync(pair, ct);

        Assert.Null(TlsAcceptor.ClientCertificateOf(tls.Accepted));
    }

    [Fact]
    public async Task Accepted_KeepsNoHandshakeBuffers_AndStillCarriesDataBothWays()
    {
        Assert.SkipUnless(OpenSslBufferRelease.Available, "Idle TLS buffers are released only where SslStream runs on OpenSSL.");
        var ct = TestContext.Current.CancellationToken;
        using var pair = await ConnectAsync(ct);
        await using var tls = await MqttHandshakeAsync(pair, ct);
        var (clientTls, accepted) = (tls.Client, tls.Accepted);

        // The server's first flight (certificate, signature, session tickets) went through the write BIO: its buffer is gone.
        Assert.Equal((0L, 0L), OpenSslBufferRelease.BioBufferSizes(accepted));
        for (var round = 0; round < 3; round++)
        {
            await clientTls.WriteAsync("ping"u8.ToArray(), ct);
            var buffer = new byte[4];
            await accepted.ReadExactlyAsync(buffer, ct).AsTask().WaitAsync(HangGuard, ct);
            Assert.Equal("ping"u8.ToArray(), buffer);
            await accepted.WriteAsync("pong"u8.ToArray(), ct);
            await clientTls.ReadExactlyAsync(buffer, ct).AsTask().WaitAsync(HangGuard, ct);
            Assert.Equal("pong"u8.ToArray(), buffer);
        }
    }

    [Fact]
    public async Task DeviceStream_WaitingForTheDevice_KeepsNoBioBuffers_AfterLargeRecordsBothWays()
    {
        Assert.SkipUnless(OpenSslBufferRelease.Available, "Idle TLS buffers are released only where SslStream runs on OpenSSL.");
        var ct = TestContext.Current.CancellationToken;
        using var pair = await ConnectAsync(ct);
        await using var tls = await MqttHandshakeAsync(pair, ct);
        var (clientTls, accepted) = (tls.Client, tls.Accepted);
        await using var device = new MqttServerStream(accepted, MqttListenerAdapter.MaxPacketBytes);

        // A device sends a message larger than a TLS record and is sent one back: full records pass through both BIOs.
        var large = Publish(20_000);
        await clientTls.WriteAsync(large, ct);
        var received = new byte[large.Length];
        await device.ReadExactlyAsync(received, ct).AsTask().WaitAsync(HangGuard, ct);
        Assert.Equal(large, received);
        await device.WriteAsync(large, ct);
        await clientTls.ReadExactlyAsync(received, ct).AsTask().WaitAsync(HangGuard, ct);
        Assert.Equal(large, received);

        // Waiting for the device's next packet, the connection keeps neither BIO's buffer; the packet still arrives.
        var waiting = device.WaitForInputAsync(ct).AsTask();
        Assert.Equal((0L, 0L), OpenSslBufferRelease.BioBufferSizes(accepted));
        var small = Publish(1);
        await clientTls.WriteAsync(small, ct);
        await waiting.WaitAsync(HangGuard, ct);
        var next = new byte[small.Length];
        await device.ReadExactlyAsync(next, ct).AsTask().WaitAsync(HangGuard, ct);
        Assert.Equal(small, next);
    }

    /// <summary>A QoS 0 PUBLISH on topic "t" with <paramref name="payloadBytes"/> bytes of payload.</summary>
    private static byte[] Publish(int payloadBytes)
    {
        var remaining = 3 + payloadBytes;
        var packet = new List<byte> { 0x30 };
        do
        {
            var digit = (byte)(remaining % 128);
            remaining /= 128;
            packet.Add(remaining > 0 ? (byte)(digit | 0x80) : digit);
        }
        while (remaining > 0);

        packet.AddRange([0x00, 0x01, (byte)'t']);
        packet.AddRange(Enumerable.Range(0, payloadBytes).Select(i => (byte)i));
        return [.. packet];
    }

    [Fact]
    public async Task NotTls_IsClosedAndLogged_NotThrown()
    {
        var ct = TestContext.Current.CancellationToken;
        using var pair = await ConnectAsync(ct);
        await pair.Client.GetStream().WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), ct);

        var accepted = await acceptor.AcceptAsync(new NetworkStream(pair.Server, ownsSocket: true), pair.Server.RemoteEndPoint, TlsProfile.Amqp, ct).WaitAsync(HangGuard, ct);

        Assert.Null(accepted);
        Assert.Equal(0, await ReadToEndAsync(pair.Client.GetStream(), ct));
        Assert.Contains(log, line => line.StartsWith("[Verbose] AMQP: TLS handshake from 127.0.0.1:", StringComparison.Ordinal) && line.Contains("failed (", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Silent_IsClosedAfterTheProfilesTimeout()
    {
        var ct = TestContext.Current.CancellationToken;
        var quick = TlsProfile.Mqtt with { Name = "quick", HandshakeTimeout = TimeSpan.FromMilliseconds(200) };
        using var pair = await ConnectAsync(ct);

        var accepted = await acceptor.AcceptAsync(new NetworkStream(pair.Server, ownsSocket: true), pair.Server.RemoteEndPoint, quick, ct).WaitAsync(HangGuard, ct);

        Assert.Null(accepted);
        Assert.Equal(0, await ReadToEndAsync(pair.Client.GetStream(), ct));
        Assert.Contains(log, line => line.Contains("quick: TLS handshake from", StringComparison.Ordinal) && line.Contains("no handshake within 0.2 s", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ListenerStopping_EndsAHandshakeInProgress()
    {
        var ct = TestContext.Current.CancellationToken;
        using var stopping = new CancellationTokenSource();
        using var pair = await ConnectAsync(ct);
        var accepting = acceptor.AcceptAsync(new NetworkStream(pair.Server, ownsSocket: true), pair.Server.RemoteEndPoint, TlsProfile.Https, stopping.Token);

        await stopping.CancelAsync();

        Assert.Null(await accepting.WaitAsync(HangGuard, ct));
        Assert.Contains(log, line => line.Contains("HTTPS: TLS handshake from", StringComparison.Ordinal) && line.Contains("the listener stopped", StringComparison.Ordinal));
    }

    private int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    /// <summary>A loopback TCP connection: the client's end and the server's accepted socket.</summary>
    private async Task<Pair> ConnectAsync(CancellationToken ct)
    {
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, Port, ct);
        return new Pair(client, await listener.AcceptSocketAsync(ct));
    }

    /// <summary>A device's TLS handshake on the MQTT profile without a client certificate: both ends, authenticated.</summary>
    private async Task<TlsPair> MqttHandshakeAsync(Pair pair, CancellationToken ct)
    {
        var clientTls = new SslStream(pair.Client.GetStream(), false, (_, _, _, _) => true);
        var clientSide = clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" }, ct);
        var accepted = await acceptor.AcceptAsync(new NetworkStream(pair.Server, ownsSocket: false), pair.Server.RemoteEndPoint, TlsProfile.Mqtt, ct).WaitAsync(HangGuard, ct);
        await clientSide.WaitAsync(HangGuard, ct);
        Assert.NotNull(accepted);
        return new TlsPair(clientTls, accepted);
    }

    private static async Task<int> ReadToEndAsync(NetworkStream stream, CancellationToken ct)
    {
        var buffer = new byte[256];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, ct).AsTask().WaitAsync(HangGuard, ct)) > 0)
            {
            }

            return read;
        }
        catch (IOException)
        {
            return 0; // reset by the server: closed as well
        }
    }

    private static X509Certificate2 SelfSigned(string subject, bool serverAuth)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        if (serverAuth)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }

        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx), null);
    }

    private sealed record TlsPair(SslStream Client, SslStream Accepted) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            await Accepted.DisposeAsync();
        }
    }

    private sealed record Pair(TcpClient Client, Socket Server) : IDisposable
    {
        public void Dispose()
        {
            Client.Dispose();
            Server.Dispose();
        }
    }
}
