using System.Net;
using IoTHubMqtt.Emulator.Hub;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using MQTTnet.Adapter;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Server;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// Feeds TCP (optionally TLS, through the emulator's <see cref="TlsAcceptor"/>) connections into an MQTTnet server.
/// Unlike the built-in endpoint it binds port 0 and reports the port the OS chose, bounds the TLS handshake in time and
/// asks for (but does not require) a client certificate so X.509 devices can authenticate.
/// </summary>
internal sealed class MqttListenerAdapter : IMqttServerAdapter
{
    /// <summary>Largest MQTT packet accepted: a 256 KB message plus a topic of up to 64 KB and headers.</summary>
    public const int MaxPacketBytes = (256 * 1024) + (64 * 1024) + 16;

    /// <summary>The packet writer's first buffer: a CONNACK (4 bytes) after the writer's reserve of 5, rounded up.</summary>
    internal const int InitialWriterBytes = 16;

    private readonly TlsAcceptor? tls;
    private readonly SocketListener listener;
    private readonly Action<string> onViolation; // one delegate for every connection
    private readonly LargeBodyPool? bodies;

    /// <param name="tls">The acceptor for MQTT over TLS; null for plain MQTT.</param>
    /// <param name="bodies">Where large telemetry bodies come from (the hub's pool); null for new arrays each time.</param>
    public MqttListenerAdapter(IPAddress address, int port, TlsAcceptor? tls, EmulatorLog log, LargeBodyPool? bodies = null)
    {
        this.bodies = bodies;
        this.tls = tls;
        onViolation = log.Information;
        listener = new SocketListener(tls is null ? "MQTT" : "MQTT/TLS", address, port, 4096, HandleAsync, log, reuseAddress: true, handlerReportsFailures: true);
    }

    public Func<IMqttChannelAdapter, Task>? ClientHandler { get; set; }

    /// <summary>The bound port (valid after start).</summary>
    public int Port => listener.Port;

    public Task StartAsync(MqttServerOptions options, IMqttNetLogger logger)
    {
        listener.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync() => listener.StopAsync();

    public void Dispose() => listener.Dispose();

    /// <summary>
    /// Runs one connection: the TLS handshake (when secured), then MQTTnet's handler on the device's channel adapter until
    /// it ends. Every failure is reported to the listener here, so this is the only waiting state the emulator keeps for a
    /// held connection outside MQTTnet's own.
    /// </summary>
    private async Task HandleAsync(Socket socket, CancellationToken stopping)
    {
        var remote = socket.RemoteEndPoint;
        try
        {
            Stream? stream = new DeviceNetworkStream(socket);
            try
            {
                if (tls is not null)
                {
                    stream = await tls.AcceptAsync(stream, remote, TlsProfile.Mqtt, stopping).ConfigureAwait(false);
                    if (stream is null)
                    {
                        return;
                    }
                }

                var handler = ClientHandler;
                if (handler is null)
                {
                    return;
                }

                using var adapter = OpenAdapter(stream, remote!);
                await handler(adapter).ConfigureAwait(false);
            }
            finally
            {
                stream?.Dispose();
            }
        }
#pragma warning disable CA1031 // one connection's failure must never take the listener down
        catch (Exception ex)
#pragma warning restore CA1031
        {
            listener.ConnectionFailed(socket, remote, ex);
        }
    }

    /// <summary>The channel adapter MQTTnet runs the connection on.</summary>
    private DeviceChannelAdapter OpenAdapter(Stream stream, EndPoint remote)
    {
        var clientCertificate = stream is SslStream ssl ? TlsAcceptor.ClientCertificateOf(ssl) : null;
        var serverStream = new MqttServerStream(stream, MaxPacketBytes, onViolation);
        // The packet writer holds a packet's header (its payload is written from where it is) for the connection's
        // life: it starts with room for a CONNACK and MQTTnet's 5-byte reserve, which is all most held devices are ever
        // sent, and doubles as a larger header needs.
        var formatter = new MqttPacketFormatterAdapter(new MqttBufferWriter(InitialWriterBytes, 65535));
        return new DeviceChannelAdapter(serverStream, formatter, listener.LocalEndPoint, remote, clientCertificate, tls is not null, bodies);
    }
}
