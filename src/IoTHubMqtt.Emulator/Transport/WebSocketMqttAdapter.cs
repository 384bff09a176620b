using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using MQTTnet.Adapter;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Implementations;
using MQTTnet.Server;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>Hands WebSocket connections accepted by the HTTPS endpoint (<c>/$iothub/websocket</c>) to an MQTTnet server.</summary>
internal sealed class WebSocketMqttAdapter : IMqttServerAdapter
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

        var channel = new MqttWebSocketChannel(webSocket, remoteEndPoint, true, clientCertificate);
        var formatter = new MqttPacketFormatterAdapter(new MqttBufferWriter(4096, 65535));
        using var adapter = new MqttChannelAdapter(channel, formatter, logger);
        await handler(adapter).ConfigureAwait(false);
    }
}
