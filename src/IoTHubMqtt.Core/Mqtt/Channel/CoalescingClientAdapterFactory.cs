using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Channel;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Implementations;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// MQTTnet's client adapter with a <see cref="CoalescingChannel"/> between the packet adapter and MQTTnet's own
/// TCP/TLS or WebSocket channel: the same layers <c>MqttClientAdapterFactory</c> builds, one added. The channel of the
/// latest connection is kept for diagnostics (<see cref="Channel"/>).
/// </summary>
internal sealed class CoalescingClientAdapterFactory : IMqttClientAdapterFactory
{
    private CoalescingChannel? channel;

    /// <summary>The channel of the latest connection attempt, if any.</summary>
    public CoalescingChannel? Channel => Volatile.Read(ref channel);

    public IMqttChannelAdapter CreateClientAdapter(MqttClientOptions options, MqttPacketInspector packetInspector, IMqttNetLogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        IMqttChannel transport = options.ChannelOptions switch
        {
            MqttClientTcpOptions => new MqttTcpChannel(options),
            MqttClientWebSocketOptions webSocket => new MqttWebSocketChannel(webSocket),
            _ => throw new NotSupportedException($"The channel options {options.ChannelOptions?.GetType().Name} are not supported."),
        };
        var coalescing = new CoalescingChannel(transport);
        Volatile.Write(ref channel, coalescing);
        var formatter = new MqttPacketFormatterAdapter(options.ProtocolVersion, new MqttBufferWriter(options.WriterBufferSize, options.WriterBufferSizeMax));
        return new MqttChannelAdapter(coalescing, formatter, logger)
        {
            AllowPacketFragmentation = options.AllowPacketFragmentation,
            PacketInspector = packetInspector,
        };
    }
}
