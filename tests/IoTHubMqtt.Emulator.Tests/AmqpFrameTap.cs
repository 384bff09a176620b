using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using Amqp;
using Amqp.Framing;
using Amqp.Types;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// The TLS transport under an AMQPNetLite connection, recording each AMQP performative that crosses it (AMQP 1.0
/// section 2.3: an 8-byte frame header — size, data offset, type, channel — then the performative). A test reads what
/// the client was sent, in the order it arrived: the flow frames AMQPNetLite takes in without reporting them.
/// </summary>
internal sealed class AmqpFrameTap : TransportProvider, IAsyncTransport
{
    private readonly Func<Task<Stream>> connect;
    private readonly FrameReader incoming;
    private readonly FrameReader outgoing;
    private readonly List<TappedFrame> frames = [];
    private readonly List<(int After, Func<TappedFrame, bool> Match, TaskCompletionSource<TappedFrame> Found)> waiters = [];
    private Stream? stream;

    public AmqpFrameTap(string host, int port, RemoteCertificateValidationCallback validate)
    {
        AddressSchemes = ["amqps"];
        connect = async () =>
        {
            var client = new TcpClient();
            await client.ConnectAsync(host, port).ConfigureAwait(false);
            var tls = new SslStream(client.GetStream(), false, validate);
            await tls.AuthenticateAsClientAsync(host).ConfigureAwait(false);
            return tls;
        };
        incoming = new FrameReader(this, fromPeer: true);
        outgoing = new FrameReader(this, fromPeer: false);
    }

    /// <summary>A connection factory whose <c>amqps</c> addresses go over this transport (one connection per tap).</summary>
    public ConnectionFactory Factory() => new([this]);

    public override async Task<IAsyncTransport> CreateAsync(Address address)
    {
        stream = await connect().ConfigureAwait(false);
        return this;
    }

    /// <summary>The handle the peer gave the link named <paramref name="name"/> in its attach (its flows and transfers carry it).</summary>
    public async Task<uint> PeerHandleAsync(string name, TimeSpan timeout) =>
        ((Attach)(await NextAsync(-1, f => f.FromPeer && f.Performative is Attach a && a.LinkName == name, timeout)).Performative!).Handle;

    /// <summary>The handle this side gave the link named <paramref name="name"/> (its own flows carry it).</summary>
    public async Task<uint> OwnHandleAsync(string name, TimeSpan timeout) =>
        ((Attach)(await NextAsync(-1, f => !f.FromPeer && f.Performative is Attach a && a.LinkName == name, timeout)).Performative!).Handle;

    /// <summary>The first frame after index <paramref name="after"/> that <paramref name="match"/> accepts, as soon as it crosses.</summary>
    public Task<TappedFrame> NextAsync(int after, Func<TappedFrame, bool> match, TimeSpan timeout)
    {
        lock (frames)
        {
            var found = frames.Skip(after + 1).FirstOrDefault(match);
            if (found is not null)
            {
                return Task.FromResult(found);
            }

            var waiter = new TaskCompletionSource<TappedFrame>(TaskCreationOptions.RunContinuationsAsynchronously);
            waiters.Add((after, match, waiter));
            return waiter.Task.WaitAsync(timeout);
        }
    }

    /// <summary>The frames that crossed so far.</summary>
    public IReadOnlyList<TappedFrame> Frames
    {
        get
        {
            lock (frames)
            {
                return [.. frames];
            }
        }
    }

    private void Record(bool fromPeer, ushort channel, object? performative)
    {
        var ready = new List<(TaskCompletionSource<TappedFrame>, TappedFrame)>();
        lock (frames)
        {
            var frame = new TappedFrame(frames.Count, fromPeer, channel, performative);
            frames.Add(frame);
            waiters.RemoveAll(w =>
            {
                if (frame.Index > w.After && w.Match(frame))
                {
                    ready.Add((w.Found, frame));
                    return true;
                }

                return false;
            });
        }

        foreach (var (found, frame) in ready)
        {
            found.TrySetResult(frame);
        }
    }

    public void SetConnection(Connection connection)
    {
    }

    public async Task SendAsync(IList<ByteBuffer> bufferList, int listSize)
    {
        foreach (var buffer in bufferList)
        {
            outgoing.Add(buffer.Buffer, buffer.Offset, buffer.Length);
            await stream!.WriteAsync(buffer.Buffer.AsMemory(buffer.Offset, buffer.Length)).ConfigureAwait(false);
        }

        await stream!.FlushAsync().ConfigureAwait(false);
    }

    public async Task<int> ReceiveAsync(byte[] buffer, int offset, int count)
    {
        var read = await stream!.ReadAsync(buffer.AsMemory(offset, count)).ConfigureAwait(false);
        incoming.Add(buffer, offset, read);
        return read;
    }

    public void Send(ByteBuffer buffer)
    {
        outgoing.Add(buffer.Buffer, buffer.Offset, buffer.Length);
        stream!.Write(buffer.Buffer, buffer.Offset, buffer.Length);
        stream.Flush();
    }

    public int Receive(byte[] buffer, int offset, int count)
    {
        var read = stream!.Read(buffer, offset, count);
        incoming.Add(buffer, offset, read);
        return read;
    }

    public void Close() => stream?.Dispose();

    /// <summary>Cuts one direction's bytes into protocol headers and frames; records each AMQP frame's performative.</summary>
    private sealed class FrameReader(AmqpFrameTap tap, bool fromPeer)
    {
        private readonly List<byte> pending = [];

        public void Add(byte[] buffer, int offset, int count)
        {
            lock (pending)
            {
                pending.AddRange(buffer.AsSpan(offset, count));
                while (true)
                {
                    if (pending.Count >= 4 && pending[0] == 'A' && pending[1] == 'M' && pending[2] == 'Q' && pending[3] == 'P')
                    {
                        if (pending.Count < 8)
                        {
                            return;
                        }

                        pending.RemoveRange(0, 8); // a protocol header (SASL, then AMQP)
                        continue;
                    }

                    if (pending.Count < 8)
                    {
                        return;
                    }

                    var bytes = pending.ToArray();
                    var size = (int)BinaryPrimitives.ReadUInt32BigEndian(bytes);
                    if (bytes.Length < size)
                    {
                        return;
                    }

                    var bodyOffset = bytes[4] * 4;
                    var type = bytes[5];
                    var channel = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(6));
                    pending.RemoveRange(0, size);
                    if (type == 0 && size > bodyOffset)
                    {
                        var body = new ByteBuffer(bytes, bodyOffset, size - bodyOffset, size - bodyOffset);
                        tap.Record(fromPeer, channel, Encoder.ReadObject(body));
                    }
                }
            }
        }
    }
}

/// <summary>One AMQP frame: its place in the order frames crossed, its direction, channel and performative.</summary>
internal sealed record TappedFrame(int Index, bool FromPeer, ushort Channel, object? Performative)
{
    /// <summary>A flow the peer sent for its link <paramref name="handle"/>.</summary>
    public bool IsPeerFlow(uint handle) => FromPeer && Performative is Flow { HasHandle: true } flow && flow.Handle == handle;

    /// <summary>The first frame of a delivery the peer sent on its link <paramref name="handle"/>.</summary>
    public bool IsPeerTransfer(uint handle) => FromPeer && Performative is Transfer { HasDeliveryId: true } transfer && transfer.Handle == handle;

    /// <summary>A flow this side sent for its link <paramref name="handle"/>.</summary>
    public bool IsOwnFlow(uint handle) => !FromPeer && Performative is Flow { HasHandle: true } flow && flow.Handle == handle;
}
