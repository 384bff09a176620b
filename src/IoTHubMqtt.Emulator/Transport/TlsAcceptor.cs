using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>What a listener asks of the TLS handshake: its name for log lines, how long a client has, whether a client
/// certificate is asked for (never required) and the ALPN protocols it offers.</summary>
internal sealed record TlsProfile(string Name, TimeSpan HandshakeTimeout, bool AskClientCertificate, List<SslApplicationProtocol>? ApplicationProtocols)
{
    /// <summary>MQTT devices and DPS: a client certificate is asked for, so X.509 devices can authenticate.</summary>
    public static TlsProfile Mqtt { get; } = new("MQTT/TLS", TimeSpan.FromSeconds(10), AskClientCertificate: true, null);

    /// <summary>The service REST API and MQTT over WebSockets: HTTP/1.1 by ALPN.</summary>
    public static TlsProfile Https { get; } = new("HTTPS", TimeSpan.FromSeconds(10), AskClientCertificate: false, [SslApplicationProtocol.Http11]);

    /// <summary>AMQP service and Event Hub-compatible clients (their handshake and SASL exchange share a longer bound).</summary>
    public static TlsProfile Amqp { get; } = new("AMQP", TimeSpan.FromSeconds(30), AskClientCertificate: false, null);
}

/// <summary>
/// The server side of every TLS connection the emulator accepts (MQTT, HTTPS/WebSockets, AMQP, DPS): the hub's
/// certificate (one certificate context, built once, for every connection), TLS 1.2 as IoT Hub speaks it, a handshake bounded in time,
/// the listener's ALPN protocols and client-certificate request, and, where the platform allows, an idle connection that
/// keeps no TLS record buffers (<see cref="OpenSslBufferRelease"/>). A handshake that fails or runs out of time is logged
/// (verbose) with the listener and the remote end, and its connection closed.
/// </summary>
internal sealed class TlsAcceptor
{
    /// <summary>
    /// The versions IoT Hub and DPS accept: TLS 1.2 (learn.microsoft.com/azure/iot-hub/iot-hub-tls-support: 1.0 and 1.1
    /// ended on 2025-08-31, and no later version is offered). A client that insists on TLS 1.3 fails against the hub, so
    /// it fails here too; a TLS 1.3 server connection would also cost OpenSSL about 2.4 KB more a held device.
    /// </summary>
    public const SslProtocols Protocols = SslProtocols.Tls12;

    private readonly SslStreamCertificateContext certificateContext;
    private readonly EmulatorLog log;

    public TlsAcceptor(X509Certificate2 certificate, EmulatorLog log)
    {
        // Built once: given only the certificate, SslStream would build a context (and its chain) for every connection.
        certificateContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);
        Certificate = certificate;
        this.log = log;
    }

    /// <summary>The hub's server certificate.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>
    /// Runs the server handshake on <paramref name="inner"/> (which the returned stream then owns). Returns null, with
    /// <paramref name="inner"/> closed, when the client fails it, stays silent past the profile's timeout, or
    /// <paramref name="cancellationToken"/> (the listener stopping) ends it.
    /// </summary>
    public async Task<SslStream?> AcceptAsync(Stream inner, EndPoint? remote, TlsProfile profile, CancellationToken cancellationToken)
    {
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false, static (_, _, _, _) => true); // a client certificate is checked by the hub, not here
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(profile.HandshakeTimeout);
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = certificateContext,
                ClientCertificateRequired = profile.AskClientCertificate, // asked for, not required: the callback accepts none
                EnabledSslProtocols = Protocols,
                ApplicationProtocols = profile.ApplicationProtocols,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or AuthenticationException or OperationCanceledException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            var reason = ex is OperationCanceledException
                ? cancellationToken.IsCancellationRequested ? "the listener stopped" : $"no handshake within {profile.HandshakeTimeout.TotalSeconds:0.###} s"
                : $"{ex.GetType().Name}: {ex.Message}";
            log.Verbose($"{profile.Name}: TLS handshake from {remote} failed ({reason}).");
            await ssl.DisposeAsync().ConfigureAwait(false);
            return null;
        }

        OpenSslBufferRelease.TryApply(ssl); // an idle connection keeps no TLS record buffers (see there)
        return ssl;
    }

    /// <summary>The client certificate an authenticated stream carries, if the client sent one.</summary>
    public static X509Certificate2? ClientCertificateOf(SslStream ssl) =>
        ssl.RemoteCertificate switch
        {
            null => null,
            X509Certificate2 certificate => certificate,
            var other => new X509Certificate2(other),
        };
}
