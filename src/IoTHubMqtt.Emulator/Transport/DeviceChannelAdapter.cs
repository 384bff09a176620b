using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using IoTHubMqtt.Emulator.Hub;
using MQTTnet.Adapter;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// The channel adapter MQTTnet's server runs one device connection (TCP or TLS) on, reading and writing packets itself:
/// a PUBLISH under MQTT 3.1.1 (what devices send most, and what IoT Hub speaks) is read straight into the array its
/// payload is kept in, with no intermediate body buffer and no copy (MQTTnet reads every body into a zeroed array and
/// decodes the payload into a second one); every other packet, and every packet of another protocol version, is decoded
/// by MQTTnet's own formatter, and every packet sent is encoded by it.
/// <para>
/// It is also what an idle device costs, thousands of times over: in place of MQTTnet's adapter and channel (whose send
/// lock keeps a queue of 64 waiters from the start) it sends under the stream's own write gate, and while the device is
/// silent its receive waits on the TLS stream directly, not through a chain of read helpers.
/// </para>
/// </summary>
internal sealed class DeviceChannelAdapter(
    MqttServerStream stream, MqttPacketFormatterAdapter formatter, EndPoint localEndPoint, EndPoint remoteEndPoint,
    X509Certificate2? clientCertificate, bool isSecureConnection, LargeBodyPool? bodies = null) : IMqttChannelAdapter
{
    private const int PublishType = 3;
    private readonly byte[] header = new byte[4];

    private long bytesReceived;
    private long bytesSent;
    private int disposed;

    // QoS 1 publishes read and PUBACKs written: the hub closing a connection lets the acknowledgements of what it took go first.
    private readonly object acknowledgements = new();
    private long atLeastOnceReceived;
    private long pubAcksSent;
    private long waitedFor;
    private TaskCompletionSource? acknowledged;

    // The CONNECT read on this connection, until the hub has decided on it (see Accepted).
    private MqttConnectPacket? connect;

    /// <summary>
    /// Called once the hub has accepted the device's CONNECT. MQTTnet keeps that packet for as long as the device stays
    /// connected, but nothing reads its SAS token or user name again: both are dropped (the token is a secret, and the two
    /// are about 270 bytes a connection), and the frame guard names the device by the client id string MQTTnet keeps rather
    /// than a copy of its own.
    /// </summary>
    public void Accepted(string clientId)
    {
        if (connect is { } packet)
        {
            packet.Password = null;
            packet.Username = null;
            connect = null;
        }

        stream.NameDevice(clientId);
    }

    /// <summary>QoS 1 PUBLISH packets read on this connection so far.</summary>
    public long AtLeastOncePublishesReceived => Interlocked.Read(ref atLeastOnceReceived);

    /// <summary>Completes once <paramref name="count"/> PUBACKs have been written (or the connection is gone).</summary>
    public Task WhenAcknowledgedAsync(long count)
    {
        lock (acknowledgements)
        {
            if (pubAcksSent >= count || Volatile.Read(ref disposed) != 0)
            {
                return Task.CompletedTask;
            }

            acknowledged ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            waitedFor = count;
            return acknowledged.Task;
        }
    }

    /// <summary>The client id the connection's messages name the device by (null before its CONNECT).</summary>
    public string? DeviceName => stream.DeviceName;

    public long BytesReceived => Volatile.Read(ref bytesReceived);

    public long BytesSent => Volatile.Read(ref bytesSent);

    public X509Certificate2 ClientCertificate => clientCertificate!;

    public EndPoint RemoteEndPoint => remoteEndPoint;

    public EndPoint LocalEndPoint => localEndPoint;

    public bool IsSecureConnection => isSecureConnection;

    public MqttPacketFormatterAdapter PacketFormatterAdapter => formatter;

    /// <summary>Accepted connections are connected already.</summary>
    public Task ConnectAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task DisconnectAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void ResetStatistics()
    {
        Volatile.Write(ref bytesReceived, 0);
        Volatile.Write(ref bytesSent, 0);
    }

    /// <summary>Encodes <paramref name="packet"/> and writes it (the stream sends it at once, or with the answers to the
    /// rest of a burst); errors surface as MQTTnet's adapter surfaces them, so its server handles them the same way.</summary>
    public async Task SendPacketAsync(MqttPacket packet, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        // One packet's header and payload leave together, under the stream's write gate (MQTTnet's server sends from its
        // send loop and, on takeover or shutdown, a DISCONNECT from another thread; the encoder's buffer is shared too).
        await stream.BeginWritesAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var buffer = formatter.Encode(packet);
            await stream.WriteInSequenceAsync(buffer.Packet, cancellationToken).ConfigureAwait(false);
            foreach (var segment in buffer.Payload)
            {
                await stream.WriteInSequenceAsync(segment, cancellationToken).ConfigureAwait(false);
            }

            Interlocked.Add(ref bytesSent, buffer.Length);
            if (packet is MqttPubAckPacket)
            {
                lock (acknowledgements)
                {
                    pubAcksSent++;
                    if (acknowledged is not null && pubAcksSent >= waitedFor)
                    {
                        acknowledged.TrySetResult();
                        acknowledged = null;
                    }
                }
            }
        }
        catch (ObjectDisposedException)
        {
            throw new MqttCommunicationException("The TCP connection is closed.");
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not MqttCommunicationException and not MqttProtocolViolationException)
        {
            throw ex is IOException { InnerException: SocketException socket } ? CommunicationFailure(socket) : new MqttCommunicationException(ex);
        }
        finally
        {
            formatter.Cleanup();
            stream.EndWrites();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 0)
        {
            stream.Dispose(); // sends what the stream holds (bounded), then closes the connection
            lock (acknowledgements)
            {
                acknowledged?.TrySetResult();
                acknowledged = null;
            }
        }
    }

    /// <summary>The next packet; null when the connection has ended or <paramref name="cancellationToken"/> is cancelled (as MQTTnet's adapter).</summary>
    public Task<MqttPacket?> ReceivePacketAsync(CancellationToken cancellationToken) =>
        stream.HasInput ? ReadPacketAsync(cancellationToken) : WaitThenReadPacketAsync(cancellationToken);

    /// <summary>
    /// Idle: waits on the connection itself, holding no buffer, no read helper's state and none of the packet reader's
    /// (this is what a silent device keeps waiting, for as long as it stays silent).
    /// </summary>
    private async Task<MqttPacket?> WaitThenReadPacketAsync(CancellationToken cancellationToken)
    {
        try
        {
            await stream.WaitForInputAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            return null;
        }
        catch (Exception ex) when (ex is not MqttCommunicationException and not MqttProtocolViolationException)
        {
            throw ReceiveFailure(ex);
        }

        return await ReadPacketAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<MqttPacket?> ReadPacketAsync(CancellationToken cancellationToken)
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

            Interlocked.Add(ref bytesReceived, headerLength + length);
            if (fixedHeader >> 4 == PublishType && length > 0 && formatter.ProtocolVersion is MqttProtocolVersion.V311 or MqttProtocolVersion.V310)
            {
                return Counted(await ReceivePublishAsync(fixedHeader, length, cancellationToken).ConfigureAwait(false));
            }

            // The body is only decoded here: MQTTnet's reader copies out every field, payload and string (MqttBufferReader), so it
            // comes from the shared pool and goes back; a body of its own would stay referenced by the reader until the next
            // packet, which for a held device is its CONNECT (about 200 bytes with a SAS token) for the connection's life.
            var body = length == 0 ? [] : ArrayPool<byte>.Shared.Rent(length);
            try
            {
                if (!await ReadExactlyAsync(body.AsMemory(0, length), cancellationToken).ConfigureAwait(false))
                {
                    return null;
                }

                var received = new ReceivedMqttPacket(fixedHeader, new ArraySegment<byte>(body, 0, length), headerLength + length);
                if (formatter.ProtocolVersion == MqttProtocolVersion.Unknown)
                {
                    formatter.DetectProtocolVersion(received);
                }

                var packet = formatter.Decode(received) ?? throw new MqttProtocolViolationException("Received malformed packet.");
                if (packet is MqttConnectPacket connectPacket)
                {
                    connect = connectPacket;
                }

                return Counted(packet);
            }
            finally
            {
                if (length > 0)
                {
                    ArrayPool<byte>.Shared.Return(body);
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            return null;
        }
        catch (Exception ex) when (ex is not MqttCommunicationException and not MqttProtocolViolationException)
        {
            throw ReceiveFailure(ex);
        }
    }

    /// <summary>A failed read as MQTTnet's adapter reports it.</summary>
    private static MqttCommunicationException ReceiveFailure(Exception ex) =>
        new(ex is IOException { InnerException: SocketException socket } ? socket : ex);

    private MqttPacket? Counted(MqttPacket? packet)
    {
        if (packet is MqttPublishPacket { QualityOfServiceLevel: MqttQualityOfServiceLevel.AtLeastOnce })
        {
            Interlocked.Increment(ref atLeastOnceReceived);
        }

        return packet;
    }

    /// <summary>A socket error as MQTTnet's adapter reports it: an aborted operation is a cancellation.</summary>
    private static Exception CommunicationFailure(SocketException socket) =>
        socket.SocketErrorCode == SocketError.OperationAborted ? new OperationCanceledException() : new MqttCommunicationException(socket);

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
            // A large body comes from the pinned heap or from a body the telemetry log has let go (LargeBodyPool).
            var payload = bodies?.Rent(payloadLength) ?? LargeBodyPool.Allocate(payloadLength);
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
