using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace IoTHubMqtt.Testing;

/// <summary>
/// A small MQTT 3.1.1 server on plain loopback TCP for the faults the emulator does not make: a hub that holds back
/// its PUBACKs, ignores twin requests, refuses or drops connections on cue. It speaks just what a device client needs
/// (CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH/PUBACK, PINGREQ/PINGRESP, DISCONNECT; OASIS MQTT 3.1.1 §3) and
/// records what it received. Device clients reach it with the MqttNoTls transport.
/// </summary>
public sealed class ScriptedMqttHub : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentDictionary<int, Connection> connections = new();
    private readonly object gate = new();
    private readonly List<ReceivedPublish> publishes = [];
    private readonly List<(Func<IReadOnlyList<ReceivedPublish>, bool> Done, TaskCompletionSource Signal)> publishWaiters = [];
    private readonly Queue<(Connection Connection, ushort PacketId)> heldAcks = new();
    private readonly Task acceptLoop;
    private int connectionIds;
    private int connects;
    private TaskCompletionSource connected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ScriptedMqttHub()
    {
        listener.Start();
        acceptLoop = AcceptAsync();
    }

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    /// <summary>How many CONNECT packets were accepted.</summary>
    public int ConnectCount => Volatile.Read(ref connects);

    private bool holdAcknowledgements;

    /// <summary>
    /// When true, PUBACKs for telemetry are held until <see cref="ReleaseAcknowledgementsAsync"/>; setting it back to
    /// false sends the held ones at once.
    /// </summary>
    public bool HoldAcknowledgements
    {
        get
        {
            lock (gate)
            {
                return holdAcknowledgements;
            }
        }

        set
        {
            lock (gate)
            {
                holdAcknowledgements = value;
            }

            if (!value)
            {
                ReleaseAcknowledgementsAsync().GetAwaiter().GetResult();
            }
        }
    }

    /// <summary>
    /// When true, twin requests are answered: with the statuses queued in <see cref="TwinStatuses"/> first, then 200
    /// (a GET: an empty twin) or 204 (a PATCH); otherwise they go unanswered.
    /// </summary>
    public bool AnswerTwin { get; set; }

    /// <summary>Statuses for the next twin requests (429: throttled, 500…), one a request, before the normal answers.</summary>
    public ConcurrentQueue<int> TwinStatuses { get; } = new();

    /// <summary>
    /// When set, a connection may publish this many telemetry messages; the next one closes it unacknowledged, as
    /// IoT Hub closes the connection of a device over its quota. The close is orderly: the acknowledgements already
    /// written reach the device before the end of the stream, and what the device sends after it is read and dropped
    /// (closing a socket with unread data would reset it, and a reset can lose the last acknowledgements in flight).
    /// </summary>
    public int? ThrottleAfter { get; set; }

    /// <summary>When set, CONNECT is refused with this CONNACK return code (3: server unavailable).</summary>
    public byte? RefuseConnections { get; set; }

    public IReadOnlyList<ReceivedPublish> Publishes
    {
        get
        {
            lock (gate)
            {
                return [.. publishes];
            }
        }
    }

    /// <summary>Telemetry bodies in the order they arrived (repeats included).</summary>
    public IReadOnlyList<string> TelemetryBodies => Publishes.Where(p => p.Topic.Contains("/messages/events/", StringComparison.Ordinal)).Select(p => p.Body).ToList();

    /// <summary>Completes at the next accepted CONNECT (or at once if one was accepted since the last call).</summary>
    public Task NextConnectionAsync()
    {
        lock (gate)
        {
            return connected.Task;
        }
    }

    /// <summary>Waits until the publishes received satisfy <paramref name="done"/> (bounded by 60 s of real time as a safety net).</summary>
    public async Task WaitForPublishesAsync(Func<IReadOnlyList<ReceivedPublish>, bool> done)
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (gate)
        {
            if (done(publishes))
            {
                return;
            }

            publishWaiters.Add((done, signal));
        }

        await signal.Task.WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
    }

    /// <summary>Sends up to <paramref name="count"/> held PUBACKs (all when null), oldest first.</summary>
    public async Task ReleaseAcknowledgementsAsync(int? count = null)
    {
        var released = new List<(Connection, ushort)>();
        lock (gate)
        {
            while (heldAcks.Count > 0 && (count is null || released.Count < count))
            {
                released.Add(heldAcks.Dequeue());
            }
        }

        foreach (var (connection, id) in released)
        {
            await connection.SendAsync([0x40, 0x02, (byte)(id >> 8), (byte)id]).ConfigureAwait(false);
        }
    }

    /// <summary>Closes every connection at once, as a network fault would (no DISCONNECT).</summary>
    public void DropConnections()
    {
        foreach (var connection in connections.Values)
        {
            connection.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        listener.Stop();
        DropConnections();
        try
        {
            await acceptLoop.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            catch (InvalidOperationException) when (stop.IsCancellationRequested)
            {
                return; // stopped between the loop's check and the accept
            }

            var connection = new Connection(Interlocked.Increment(ref connectionIds), client);
            connections[connection.Id] = connection;
            _ = ServeAsync(connection);
        }
    }

    private async Task ServeAsync(Connection connection)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var (header, body) = await connection.ReadPacketAsync(stop.Token).ConfigureAwait(false);
                switch (header >> 4)
                {
                    case 1: // CONNECT
                        if (RefuseConnections is { } code)
                        {
                            await connection.SendAsync([0x20, 0x02, 0x00, code]).ConfigureAwait(false);
                            connection.Close();
                            return;
                        }

                        await connection.SendAsync([0x20, 0x02, 0x00, 0x00]).ConfigureAwait(false);
                        Interlocked.Increment(ref connects);
                        lock (gate)
                        {
                            connected.TrySetResult();
                            connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        }

                        break;
                    case 8: // SUBSCRIBE: grant each filter the QoS asked
                        var granted = new List<byte> { 0x90, 0, body[0], body[1] };
                        for (var at = 2; at < body.Length;)
                        {
                            var length = (body[at] << 8) | body[at + 1];
                            granted.Add(body[at + 2 + length]);
                            at += 3 + length;
                        }

                        granted[1] = (byte)(granted.Count - 2);
                        await connection.SendAsync([.. granted]).ConfigureAwait(false);
                        break;
                    case 3: // PUBLISH
                        await OnPublishAsync(connection, header, body).ConfigureAwait(false);
                        break;
                    case 12: // PINGREQ
                        await connection.SendAsync([0xD0, 0x00]).ConfigureAwait(false);
                        break;
                    case 14: // DISCONNECT
                        connection.Close();
                        return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or EndOfStreamException)
        {
        }
        finally
        {
            connections.TryRemove(connection.Id, out _);
            connection.Close();
        }
    }

    private async Task OnPublishAsync(Connection connection, byte header, byte[] body)
    {
        var qos = (header >> 1) & 3;
        var topicLength = (body[0] << 8) | body[1];
        var topic = Encoding.UTF8.GetString(body, 2, topicLength);
        var at = 2 + topicLength;
        ushort packetId = 0;
        if (qos > 0)
        {
            packetId = (ushort)((body[at] << 8) | body[at + 1]);
            at += 2;
        }

        var payload = Encoding.UTF8.GetString(body, at, body.Length - at);
        var telemetry = topic.Contains("/messages/events/", StringComparison.Ordinal);
        if (connection.Ending)
        {
            return;
        }

        if (telemetry && ThrottleAfter is { } quota && ++connection.Telemetry > quota)
        {
            await connection.EndAsync().ConfigureAwait(false);
            return;
        }

        var hold = false;
        List<TaskCompletionSource>? done = null;
        lock (gate)
        {
            hold = holdAcknowledgements && telemetry;
            publishes.Add(new ReceivedPublish(connection.Id, topic, payload, qos));
            for (var i = publishWaiters.Count - 1; i >= 0; i--)
            {
                if (publishWaiters[i].Done(publishes))
                {
                    (done ??= []).Add(publishWaiters[i].Signal);
                    publishWaiters.RemoveAt(i);
                }
            }

            if (qos > 0 && hold)
            {
                heldAcks.Enqueue((connection, packetId));
            }
        }

        if (qos > 0 && !hold)
        {
            await connection.SendAsync([0x40, 0x02, (byte)(packetId >> 8), (byte)packetId]).ConfigureAwait(false);
        }

        if (AnswerTwin && topic.StartsWith("$iothub/twin/", StringComparison.Ordinal))
        {
            var rid = topic[(topic.IndexOf("?$rid=", StringComparison.Ordinal) + 6)..];
            var get = topic.StartsWith("$iothub/twin/GET/", StringComparison.Ordinal);
            var status = TwinStatuses.TryDequeue(out var queued) ? queued : get ? 200 : 204;
            var answer = status != 200 ? "" : "{\"desired\":{\"$version\":1},\"reported\":{\"$version\":1}}";
            await connection.SendAsync(Publish($"$iothub/twin/res/{status}/?$rid={rid}{(status == 204 ? "&$version=2" : "")}", answer)).ConfigureAwait(false);
        }

        // Last, so a test that waited for this publish sees the hub's answer already sent.
        done?.ForEach(d => d.TrySetResult());
    }

    private static byte[] Publish(string topic, string payload)
    {
        var topicBytes = Encoding.UTF8.GetBytes(topic);
        var payloadBytes = Encoding.UTF8.GetBytes(payload);
        var remaining = 2 + topicBytes.Length + payloadBytes.Length;
        var packet = new List<byte> { 0x30 };
        do
        {
            var digit = (byte)(remaining % 128);
            remaining /= 128;
            packet.Add(remaining > 0 ? (byte)(digit | 0x80) : digit);
        }
        while (remaining > 0);
        packet.Add((byte)(topicBytes.Length >> 8));
        packet.Add((byte)topicBytes.Length);
        packet.AddRange(topicBytes);
        packet.AddRange(payloadBytes);
        return [.. packet];
    }

    private sealed class Connection(int id, TcpClient client)
    {
        public int Telemetry { get; set; }

        private readonly NetworkStream stream = client.GetStream();
        private readonly SemaphoreSlim writeLock = new(1, 1);

        public int Id { get; } = id;

        /// <summary>True once the hub has ended its side of the stream; what the device still sends is dropped.</summary>
        public bool Ending { get; private set; }

        public async Task<(byte Header, byte[] Body)> ReadPacketAsync(CancellationToken cancellationToken)
        {
            var one = new byte[1];
            await stream.ReadExactlyAsync(one, cancellationToken).ConfigureAwait(false);
            var header = one[0];
            int length = 0, shift = 0;
            do
            {
                await stream.ReadExactlyAsync(one, cancellationToken).ConfigureAwait(false);
                length |= (one[0] & 0x7F) << shift;
                shift += 7;
            }
            while ((one[0] & 0x80) != 0);
            var body = new byte[length];
            await stream.ReadExactlyAsync(body, cancellationToken).ConfigureAwait(false);
            return (header, body);
        }

        public async Task SendAsync(byte[] packet)
        {
            await writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                await stream.WriteAsync(packet).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException)
            {
                // The connection is gone; the client will find out by itself.
            }
            finally
            {
                writeLock.Release();
            }
        }

        public void Close() => client.Dispose();

        /// <summary>
        /// Ends the hub's side of the stream after the packets already written (FIN, not a reset), leaving the reading
        /// loop to drain what the device sends until it closes its side.
        /// </summary>
        public async Task EndAsync()
        {
            await writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                Ending = true;
                client.Client.Shutdown(SocketShutdown.Send);
            }
            catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
            {
                // Already gone.
            }
            finally
            {
                writeLock.Release();
            }
        }
    }
}

/// <summary>A PUBLISH the scripted hub received: on which connection, the topic, the body as UTF-8 and its QoS.</summary>
public sealed record ReceivedPublish(int Connection, string Topic, string Body, int QoS);
