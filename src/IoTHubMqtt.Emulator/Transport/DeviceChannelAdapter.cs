using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MQTTnet.Adapter;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// MQTTnet's channel adapter for one device connection over TCP or TLS, receiving packets itself: a PUBLISH under MQTT
/// 3.1.1 (what devices send most, and what IoT Hub speaks) is read straight into the array its payload is kept in, with no
/// intermediate body buffer and no copy (MQTTnet reads every body into a zeroed array and decodes the payload into a
/// second one); every other packet, and every packet of another protocol version, is decoded by MQTTnet's own formatter.
/// Sending, and everything else, is MQTTnet's adapter.
/// </summary>
internal sealed class DeviceChannelAdapter(MqttChannelAdapter inner, MqttServerStream stream) : IMqttChannelAdapter
{
    private const int PublishType = 3;
    private const int LargeBodyBytes = 16 * 1024;
    private readonly byte[] header = new byte[4];

    public long BytesReceived => inner.BytesReceived;

    public long BytesSent => inner.BytesSent;

    public X509Certificate2 ClientCertificate => inner.ClientCertificate;

    public EndPoint RemoteEndPoint => inner.RemoteEndPoint;

    public EndPoint LocalEndPoint => inner.LocalEndPoint;

    public bool IsSecureConnection => inner.IsSecureConnection;

    public MqttPacketFormatterAdapter PacketFormatterAdapter => inner.PacketFormatterAdapter;

    public Task ConnectAsync(CancellationToken cancellationToken) => inner.ConnectAsync(cancellationToken);

    public Task DisconnectAsync(CancellationToken cancellationToken) => inner.DisconnectAsync(cancellationToken);

    public void ResetStatistics() => inner.ResetStatistics();

    public Task SendPacketAsync(MqttPacket packet, CancellationToken cancellationToken) => inner.SendPacketAsync(packet, cancellationToken);

    public void Dispose() => inner.Dispose();

    /// <summary>The next packet; null when the connection has ended or <paramref name="cancellationToken"/> is cancelled (as MQTTnet's adapter).</summary>
    public async Task<MqttPacket?> ReceivePacketAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (!await ReadExactlyAsync(header.AsMemory(0, 1), cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            var fixedHeader = header[0];
            var length = 0;
            var headerLength = 1;
            for (int shift = 0, i = 0; ; shift += 7, i++)
            {
                if (i == 4)
                {
                    throw new MqttProtocolViolationException("Remaining length is invalid.");
                }

                if (!await ReadExactlyAsync(header.AsMemory(0, 1), cancellationToken).ConfigureAwait(false))
                {
                    return null;
                }

                length |= (header[0] & 0x7F) << shift;
                headerLength++;
                if ((header[0] & 0x80) == 0)
                {
                    break;
                }
            }

            var formatter = inner.PacketFormatterAdapter;
            if (fixedHeader >> 4 == PublishType && length > 0 && formatter.ProtocolVersion is MqttProtocolVersion.V311 or MqttProtocolVersion.V310)
            {
                return await ReceivePublishAsync(fixedHeader, length, cancellationToken).ConfigureAwait(false);
            }

            var body = length == 0 ? [] : GC.AllocateUninitializedArray<byte>(length);
            if (!await ReadExactlyAsync(body, cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            var received = new ReceivedMqttPacket(fixedHeader, new ArraySegment<byte>(body), headerLength + length);
            if (formatter.ProtocolVersion == MqttProtocolVersion.Unknown)
            {
                formatter.DetectProtocolVersion(received);
            }

            return formatter.Decode(received) ?? throw new MqttProtocolViolationException("Received malformed packet.");
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            return null;
        }
        catch (Exception ex) when (ex is not MqttCommunicationException and not MqttProtocolViolationException)
        {
            throw new MqttCommunicationException(ex is IOException { InnerException: SocketException socket } ? socket : ex);
        }
    }

    /// <summary>A PUBLISH's variable header (MQTT 3.1.1 §3.3.2), then its payload into an array of its own.</summary>
    private async Task<MqttPacket?> ReceivePublishAsync(byte fixedHeader, int length, CancellationToken cancellationToken)
    {
        var qos = (MqttQualityOfServiceLevel)((fixedHeader >> 1) & 0x3);
        if (length < 2)
        {
            throw Malformed();
        }

        if (!await ReadExactlyAsync(header.AsMemory(0, 2), cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        int topicLength = BinaryPrimitives.ReadUInt16BigEndian(header);
        var idLength = qos > MqttQualityOfServiceLevel.AtMostOnce ? 2 : 0;
        var payloadLength = length - 2 - topicLength - idLength;
        if (payloadLength < 0)
        {
            throw Malformed();
        }

        string topic;
        var topicBytes = ArrayPool<byte>.Shared.Rent(Math.Max(topicLength, 1));
        try
        {
            if (!await ReadExactlyAsync(topicBytes.AsMemory(0, topicLength), cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            topic = Encoding.UTF8.GetString(topicBytes, 0, topicLength);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(topicBytes);
        }

        ushort packetId = 0;
        if (idLength > 0)
        {
            if (!await ReadExactlyAsync(header.AsMemory(0, 2), cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            packetId = BinaryPrimitives.ReadUInt16BigEndian(header);
        }

        var packet = new MqttPublishPacket
        {
            PacketIdentifier = packetId,
            Retain = (fixedHeader & 0x1) != 0,
            Topic = topic,
            QualityOfServiceLevel = qos,
            Dup = (fixedHeader & 0x8) != 0,
        };
        if (payloadLength > 0)
        {
            // A large body goes to the pinned object heap: it is kept (the telemetry log) past many young collections,
            // which would otherwise copy it from generation to generation; there it is never moved.
            var payload = GC.AllocateUninitializedArray<byte>(payloadLength, pinned: payloadLength >= LargeBodyBytes);
            if (!await ReadExactlyAsync(payload, cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            packet.PayloadSegment = new ArraySegment<byte>(payload);
        }

        return packet;
    }

    private static MqttProtocolViolationException Malformed() => new("Received malformed packet.");

    /// <summary>Fills <paramref name="buffer"/>; false when the connection ends first.</summary>
    private async ValueTask<bool> ReadExactlyAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false) == buffer.Length;
}
