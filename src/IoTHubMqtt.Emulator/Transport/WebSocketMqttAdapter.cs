using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using MQTTnet.Adapter;
using MQTTnet.Channel;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Implementations;
using MQTTnet.Server;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>Hands WebSocket connections accepted by the HTTPS endpoint (<c>/$iothub/websocket</c>) to an MQTTnet server.</summary>
internal sealed class WebSocketMqttAdapter(EmulatorLog log) : IMqttServerAdapter
{
    private IMqttNetLogger logger = MqttNetNullLogger.Instance;

    public Func<IMqttChannelAdapter, Task>? ClientHandler { get; set; }

    public Task StartAsync(MqttServerOptions options, IMqttNetLogger logger)
    {
        this.logger = logger;
        return Task.CompletedTask;
    }

    public Task StopAsync() => Task.CompletedTask;

    public void Dispose()
    {
    }

    /// <summary>Runs one MQTT session over an accepted WebSocket until it ends.</summary>
    public async Task RunAsync(WebSocket webSocket, EndPoint? remoteEndPoint, X509Certificate2? clientCertificate)
    {
        var handler = ClientHandler;
        if (handler is null)
        {
            return;
        }

        var channel = new GuardedChannel(new MqttWebSocketChannel(webSocket, remoteEndPoint, true, clientCertificate), MqttListenerAdapter.MaxPacketBytes, log.Information);
        var formatter = new MqttPacketFormatterAdapter(new MqttBufferWriter(MqttListenerAdapter.InitialWriterBytes, 65535));
        using var adapter = new MqttChannelAdapter(channel, formatter, logger);
        await handler(adapter).ConfigureAwait(false);
    }

    /// <summary>Checks the MQTT framing of what a WebSocket client sends, like <see cref="MqttServerStream"/> does for TCP.</summary>
    private sealed class GuardedChannel(IMqttChannel inner, int maxRemainingLength, Action<string> onViolation) : IMqttChannel
    {
        private readonly MqttFrameGuard guard = new(maxRemainingLength, onViolation);

        public X509Certificate2 ClientCertificate => inner.ClientCertificate;

        public EndPoint RemoteEndPoint => inner.RemoteEndPoint;

        public EndPoint LocalEndPoint => inner.LocalEndPoint;

        public bool IsSecureConnection => inner.IsSecureConnection;

        public Task ConnectAsync(CancellationToken cancellationToken) => inner.ConnectAsync(cancellationToken);

        public Task DisconnectAsync(CancellationToken cancellationToken) => inner.DisconnectAsync(cancellationToken);

        public async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            var read = await inner.ReadAsync(buffer, offset, count, cancellationToken).ConfigureAwait(false);
            guard.Inspect(buffer.AsSpan(offset, read));
            return read;
        }

        public Task WriteAsync(System.Buffers.ReadOnlySequence<byte> buffer, bool isEndOfPacket, CancellationToken cancellationToken) =>
            inner.WriteAsync(buffer, isEndOfPacket, cancellationToken);

        public void Dispose() => inner.Dispose();
    }
}
