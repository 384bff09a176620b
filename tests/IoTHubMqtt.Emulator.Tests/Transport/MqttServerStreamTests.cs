using System.Threading.Channels;
using IoTHubMqtt.Emulator.Transport;

namespace IoTHubMqtt.Emulator.Tests.Transport;

/// <summary>
/// The stream under MQTTnet for a device connection: what it reads ahead, what it holds back and when it sends it. The
/// connection under it is a scripted one (chunks the device "sent", writes recorded in order).
/// </summary>
public sealed class MqttServerStreamTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(1);

    // Three QoS 1 PUBLISH packets (topic "t", packet ids 1-3, one-byte payload) as a device sends them together.
    private static readonly byte[][] Publishes = [.. Enumerable.Range(1, 3).Select(id => new byte[] { 0x32, 0x06, 0x00, 0x01, (byte)'t', 0x00, (byte)id, (byte)('a' + id) })];

    private static byte[] PubAck(int id) => [0x40, 0x02, 0x00, (byte)id];

    [Fact]
    public async Task AnswersToOneBurst_LeaveInOneWrite_InOrder()
    {
        var connection = new ScriptedConnection();
        using var stream = new MqttServerStream(connection, 1024);
        connection.Send([.. Publishes.SelectMany(p => p)]);

        for (var id = 1; id <= 3; id++)
        {
            Assert.Equal(Publishes[id - 1], await ReadPacketAsync(stream));
            await stream.WriteAsync(PubAck(id), TestContext.Current.CancellationToken);
            if (id < 3)
            {
                Assert.Empty(connection.Writes); // more of the burst is here: the answer waits for the others
            }
        }

        var write = Assert.Single(connection.Writes);
        Assert.Equal([.. PubAck(1), .. PubAck(2), .. PubAck(3)], write);
    }

    [Fact]
    public async Task HeldAnswers_GoOut_BeforeTheReaderWaitsForMore()
    {
        var connection = new ScriptedConnection();
        using var stream = new MqttServerStream(connection, 1024);
        connection.Send([.. Publishes[0], .. Publishes[1]]);

        Assert.Equal(Publishes[0], await ReadPacketAsync(stream));
        await stream.WriteAsync(PubAck(1), TestContext.Current.CancellationToken);
        Assert.Empty(connection.Writes);

        // The second packet is read and not answered (QoS 0, say); the next read has to wait for the device.
        Assert.Equal(Publishes[1], await ReadPacketAsync(stream));
        var waiting = stream.ReadAsync(new byte[2], TestContext.Current.CancellationToken).AsTask();
        await connection.Waiting.WaitAsync(HangGuard, TestContext.Current.CancellationToken);
        Assert.Equal(PubAck(1), Assert.Single(connection.Writes));

        connection.Send(Publishes[2]);
        Assert.Equal(2, await waiting.WaitAsync(HangGuard, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task HeldAnswers_AreSent_WhenTheHubClosesTheConnectionMidBurst()
    {
        // Throttled (or a bad packet) after the first message: the first was taken, so its PUBACK must still reach the device.
        var connection = new ScriptedConnection();
        var stream = new MqttServerStream(connection, 1024);
        connection.Send([.. Publishes.SelectMany(p => p)]);
        Assert.Equal(Publishes[0], await ReadPacketAsync(stream));
        await stream.WriteAsync(PubAck(1), TestContext.Current.CancellationToken);
        Assert.Empty(connection.Writes);

        await stream.DisposeAsync();
        Assert.Equal(PubAck(1), Assert.Single(connection.Writes));
        Assert.True(connection.Disposed);

        var synchronous = new ScriptedConnection();
        var closedSynchronously = new MqttServerStream(synchronous, 1024);
        synchronous.Send([.. Publishes.SelectMany(p => p)]);
        Assert.Equal(Publishes[0], await ReadPacketAsync(closedSynchronously));
        await closedSynchronously.WriteAsync(PubAck(1), TestContext.Current.CancellationToken);
        closedSynchronously.Dispose();
        Assert.Equal(PubAck(1), Assert.Single(synchronous.Writes));
    }

    [Fact]
    public async Task AWrite_WithNothingReadAhead_GoesOutAtOnce()
    {
        var connection = new ScriptedConnection();
        using var stream = new MqttServerStream(connection, 1024);

        // A cloud-to-device message while the device is silent.
        await stream.WriteAsync(new byte[] { 0x30, 0x03, 0x00, 0x01, (byte)'c' }, TestContext.Current.CancellationToken);
        Assert.Single(connection.Writes);

        // And after the device's whole burst has been read.
        connection.Send(Publishes[0]);
        Assert.Equal(Publishes[0], await ReadPacketAsync(stream));
        await stream.WriteAsync(PubAck(1), TestContext.Current.CancellationToken);
        Assert.Equal(2, connection.Writes.Count);
    }

    [Fact]
    public async Task HeldBytes_AreBounded_AWriteBeyondTakesThemAlong()
    {
        var connection = new ScriptedConnection();
        using var stream = new MqttServerStream(connection, 1024);
        connection.Send([.. Publishes[0], .. Publishes[1]]);
        Assert.Equal(Publishes[0], await ReadPacketAsync(stream));

        var first = Enumerable.Repeat((byte)1, MqttServerStream.MaxHeldBytes - 10).ToArray();
        var second = Enumerable.Repeat((byte)2, 100).ToArray();
        await stream.WriteAsync(first, TestContext.Current.CancellationToken);
        Assert.Empty(connection.Writes);
        await stream.WriteAsync(second, TestContext.Current.CancellationToken);

        Assert.Equal([.. first, .. second], connection.Writes.SelectMany(w => w).ToArray());
    }

    [Fact]
    public async Task AnOversizedPacket_EndsTheConnection_AfterThePacketsBeforeIt()
    {
        var connection = new ScriptedConnection();
        using var stream = new MqttServerStream(connection, 1024);
        connection.Send([.. Publishes[0], 0x32, 0xFF, 0xFF, 0x03]); // then a PUBLISH declaring 65,535 bytes

        Assert.Equal(Publishes[0], await ReadPacketAsync(stream));
        await Assert.ThrowsAsync<IOException>(() => ReadPacketAsync(stream));
    }

    [Fact]
    public async Task WaitingForInput_SendsWhatIsHeldFirst_AndLeavesTheInputToTheNextRead()
    {
        // How an idle device's connection waits: no read helper in between, nothing held back while it waits.
        var ct = TestContext.Current.CancellationToken;
        var connection = new ScriptedConnection();
        using var stream = new MqttServerStream(connection, 1024);
        connection.Send([.. Publishes[0], .. Publishes[1]]);
        Assert.Equal(Publishes[0], await ReadPacketAsync(stream));
        await stream.WriteAsync(PubAck(1), ct);

        Assert.True(stream.HasInput);
        await stream.WaitForInputAsync(ct).AsTask().WaitAsync(HangGuard, ct); // input is here: at once, the answer still held
        Assert.Empty(connection.Writes);
        Assert.Equal(Publishes[1], await ReadPacketAsync(stream));
        Assert.False(stream.HasInput);

        var wait = stream.WaitForInputAsync(ct).AsTask();
        await connection.Waiting.WaitAsync(HangGuard, ct);
        Assert.Equal(PubAck(1), Assert.Single(connection.Writes)); // sent before the wait
        Assert.False(wait.IsCompleted);

        connection.Send(Publishes[2]);
        await wait.WaitAsync(HangGuard, ct);
        Assert.Equal(Publishes[2], await ReadPacketAsync(stream)); // the wait took none of it
    }

    [Fact]
    public async Task ALargePacket_IsReadWhole_AcrossReadAheadChunks()
    {
        var connection = new ScriptedConnection();
        using var stream = new MqttServerStream(connection, 128 * 1024);
        var payload = Enumerable.Range(0, 40_000).Select(i => (byte)(i * 7)).ToArray();
        byte[] packet = [0x30, .. RemainingLength(3 + payload.Length), 0x00, 0x01, (byte)'t', .. payload];
        for (var at = 0; at < packet.Length; at += 5000)
        {
            connection.Send(packet[at..Math.Min(packet.Length, at + 5000)]);
        }

        Assert.Equal(packet, await ReadPacketAsync(stream));
    }

    private static byte[] RemainingLength(int length)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(length % 128);
            length /= 128;
            bytes.Add(length > 0 ? (byte)(b | 0x80) : b);
        }
        while (length > 0);
        return [.. bytes];
    }

    /// <summary>Reads one MQTT packet as MQTTnet does: the fixed header, the length byte by byte, the body in 4 KB chunks.</summary>
    private static async Task<byte[]> ReadPacketAsync(Stream stream)
    {
        var ct = TestContext.Current.CancellationToken;
        var packet = new List<byte>();
        var one = new byte[1];
        await ReadExactlyAsync(stream, one, ct);
        packet.Add(one[0]);
        int length = 0, multiplier = 1;
        do
        {
            await ReadExactlyAsync(stream, one, ct);
            packet.Add(one[0]);
            length += (one[0] & 0x7F) * multiplier;
            multiplier *= 128;
        }
        while ((one[0] & 0x80) != 0);

        var body = new byte[length];
        for (var at = 0; at < length;)
        {
            var read = await stream.ReadAsync(body.AsMemory(at, Math.Min(4096, length - at)), ct);
            Assert.NotEqual(0, read);
            at += read;
        }

        packet.AddRange(body);
        return [.. packet];
    }

    private static async Task ReadExactlyAsync(Stream stream, byte[] buffer, CancellationToken ct)
    {
        var read = await stream.ReadAsync(buffer, ct).AsTask().WaitAsync(HangGuard, ct);
        Assert.Equal(buffer.Length, read);
    }

    /// <summary>A connection whose input is what the test sends, chunk by chunk, and whose writes are recorded.</summary>
    private sealed class ScriptedConnection : Stream
    {
        private readonly Channel<byte[]> input = Channel.CreateUnbounded<byte[]>();
        private readonly SemaphoreSlim waiting = new(0);
        private byte[] current = [];
        private int offset;

        public List<byte[]> Writes { get; } = [];

        public bool Disposed { get; private set; }

        /// <summary>Completes once a read has had to wait for input.</summary>
        public Task Waiting => waiting.WaitAsync();

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public void Send(byte[] chunk) => input.Writer.TryWrite(chunk);

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (offset == current.Length)
            {
                if (!input.Reader.TryRead(out var next))
                {
                    waiting.Release();
                    next = await input.Reader.ReadAsync(cancellationToken);
                }

                (current, offset) = (next, 0);
            }

            var count = Math.Min(buffer.Length, current.Length - offset);
            current.AsSpan(offset, count).CopyTo(buffer.Span);
            offset += count;
            return count;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            lock (Writes)
            {
                Writes.Add(buffer.ToArray());
            }

            return ValueTask.CompletedTask;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}
