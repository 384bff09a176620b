using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using MQTTnet.Adapter;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Implementations;
using MQTTnet.Server;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// Feeds TCP (optionally TLS) connections into an MQTTnet server. Unlike the built-in endpoint it binds port 0
/// and reports the port the OS chose, bounds the TLS handshake in time and asks for (but does not require) a
/// client certificate so X.509 devices can authenticate.
/// </summary>
internal sealed class MqttListenerAdapter : IMqttServerAdapter
{
    /// <summary>Largest MQTT packet accepted: a 256 KB message plus a topic of up to 64 KB and headers.</summary>
    public const int MaxPacketBytes = (256 * 1024) + (64 * 1024) + 16;

    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);
    private readonly IPAddress address;
    private readonly int requestedPort;
    private readonly X509Certificate2? serverCertificate;
    private readonly EmulatorLog log;
    private readonly CancellationTokenSource stopping = new();
    private TcpListener? listener;
    private Task? acceptLoop;
    private IMqttNetLogger mqttLogger = MqttNetNullLogger.Instance;

    public MqttListenerAdapter(IPAddress address, int port, X509Certificate2? serverCertificate, EmulatorLog log)
    {
        this.address = address;
        requestedPort = port;
        this.serverCertificate = serverCertificate;
        this.log = log;
    }

    public Func<IMqttChannelAdapter, Task>? ClientHandler { get; set; }

    /// <summary>The bound port (valid after start).</summary>
    public int Port { get; private set; }

    public Task StartAsync(MqttServerOptions options, IMqttNetLogger logger)
    {
        mqttLogger = logger;
        listener = new TcpListener(address, requestedPort);
        if (!address.Equals(IPAddress.Any) && !address.Equals(IPAddress.IPv6Any))
        {
            listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        }

        listener.Start(4096);
        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        acceptLoop = Task.Run(AcceptLoopAsync);
        return Task.CompletedTask;
    }

    public async Task StopAsync()
    {
        if (stopping.IsCancellationRequested)
        {
            return;
        }

        await stopping.CancelAsync().ConfigureAwait(false);
        listener?.Stop();
        if (acceptLoop is not null)
        {
            await acceptLoop.ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        stopping.Cancel();
        listener?.Stop();
        stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener!.AcceptSocketAsync(stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex)
            {
                if (stopping.IsCancellationRequested)
                {
                    return;
                }

                log.Warning($"Accept failed on port {Port}: {ex.SocketErrorCode}.");
                continue;
            }

            _ = Task.Run(() => HandleAsync(socket));
        }
    }

    private async Task HandleAsync(Socket socket)
    {
        var remote = socket.RemoteEndPoint;
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            socket.NoDelay = true;
            X509Certificate2? clientCertificate = null;
            if (serverCertificate is not null)
            {
                var ssl = new SslStream(stream, false, static (_, _, _, _) => true);
                stream = ssl;
                using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token))
                {
                    timeout.CancelAfter(HandshakeTimeout);
                    await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                    {
                        ServerCertificate = serverCertificate,
                        ClientCertificateRequired = true, // asked for, not required: the callback accepts none
                        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                    }, timeout.Token).ConfigureAwait(false);
                }

                if (ssl.RemoteCertificate is not null)
                {
                    clientCertificate = ssl.RemoteCertificate as X509Certificate2 ?? new X509Certificate2(ssl.RemoteCertificate);
                }
            }

            var handler = ClientHandler;
            if (handler is null)
            {
                return;
            }

            var channel = new MqttTcpChannel(new PacketSizeGuardStream(stream, MaxPacketBytes, log.Information), listener!.LocalEndpoint, remote, clientCertificate);
            var formatter = new MqttPacketFormatterAdapter(new MqttBufferWriter(4096, 65535));
            using var adapter = new MqttChannelAdapter(channel, formatter, mqttLogger);
            await handler(adapter).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or AuthenticationException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
            log.Verbose($"Connection from {remote} ended during setup: {ex.GetType().Name}.");
        }
#pragma warning disable CA1031 // one connection's failure must never take the listener down
        catch (Exception ex)
#pragma warning restore CA1031
        {
            log.Warning($"Connection from {remote} failed: {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}
