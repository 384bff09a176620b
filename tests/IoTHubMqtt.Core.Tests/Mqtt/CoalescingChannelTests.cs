using System.Buffers;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using IoTHubMqtt.Core.Mqtt;
using MQTTnet.Channel;
using MQTTnet.Exceptions;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>
/// The channel that gathers packets into few transport writes, over a transport whose writes the test completes (or
/// fails) one by one: order on the wire, and a large body written from where it is, its writer held until it has left.
/// </summary>
public sealed class CoalescingChannelTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task ALargeBody_LeavesInItsPlace_AndItsWriterWaitsUntilItHasLeft()
    {
        var transport = new GatedTransport();
        var channel = new CoalescingChannel(transport);
        var header = new byte[] { 0x32, 0x80, 0x80, 0x04 };
        var body = Enumerable.Range(0, CoalescingChannel.DirectBytes * 4).Select(i => (byte)i).ToArray();
        var next = new byte[] { 0x40, 0x02, 0x00, 0x07 };

        var headerWritten = channel.WriteAsync(new ReadOnlySequence<byte>(header), false, CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var bodyWritten = channel.WriteAsync(new ReadOnlySequence<byte>(body), true, cancel.Token);
        var nextWritten = channel.WriteAsync(new ReadOnlySequence<byte>(next), true, CancellationToken.None);
        Assert.True(headerWritten.IsCompletedSuccessfully); // buffered
        Assert.True(nextWritten.IsCompletedSuccessfully);

        // The header goes first; the body is not taken (nor its writer released, even cancelled) before its own write.
        Assert.Equal(header, await transport.NextWriteAsync());
        await cancel.CancelAsync();
        Assert.False(bodyWritten.IsCompleted);
        transport.CompleteWrite();

        Assert.Equal(body, await transport.NextWriteAsync());
        Assert.False(bodyWritten.IsCompleted);
        transport.CompleteWrite();
        await bodyWritten.WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        Assert.Equal(next, await transport.NextWriteAsync());
        transport.CompleteWrite();
        Assert.Equal(2, channel.Packets);
    }

    [Fact]
    public async Task SmallPackets_LeaveTogether_InOneWrite()
    {
        var transport = new GatedTransport();
        var channel = new CoalescingChannel(transport);
        var first = channel.WriteAsync(new ReadOnlySequence<byte>([1, 2]), true, CancellationToken.None);
        Assert.Equal([1, 2], await transport.NextWriteAsync()); // under way: the next ones gather meanwhile
        await channel.WriteAsync(new ReadOnlySequence<byte>([3]), true, CancellationToken.None);
        await channel.WriteAsync(new ReadOnlySequence<byte>([4, 5]), true, CancellationToken.None);
        transport.CompleteWrite();

        Assert.Equal([3, 4, 5], await transport.NextWriteAsync());
        transport.CompleteWrite();
        await first;
        Assert.Equal(2, channel.Batches);
        Assert.Equal(3, channel.Packets);
    }

    [Fact]
    public async Task AFailedWrite_FailsTheLargeBodyWaitingForIt_AndEveryLaterWrite()
    {
        var transport = new GatedTransport();
        var channel = new CoalescingChannel(transport);
        _ = channel.WriteAsync(new ReadOnlySequence<byte>([1]), false, CancellationToken.None);
        var body = channel.WriteAsync(new ReadOnlySequence<byte>(new byte[CoalescingChannel.DirectBytes]), true, CancellationToken.None);

        await transport.NextWriteAsync();
        transport.FailWrite(new IOException("connection reset"));

        await Assert.ThrowsAsync<MqttCommunicationException>(() => body.WaitAsync(HangGuard, TestContext.Current.CancellationToken));
        await Assert.ThrowsAsync<MqttCommunicationException>(() => channel.WriteAsync(new ReadOnlySequence<byte>([2]), true, CancellationToken.None));
        Assert.True(transport.Disposed);
    }

    [Fact]
    public async Task ALargeBody_QueuedWhenTheChannelIsDisposed_Fails()
    {
        var transport = new GatedTransport();
        var channel = new CoalescingChannel(transport);
        _ = channel.WriteAsync(new ReadOnlySequence<byte>([1]), true, CancellationToken.None);
        await transport.NextWriteAsync(); // the writer is busy with the first
        var body = channel.WriteAsync(new ReadOnlySequence<byte>(new byte[CoalescingChannel.DirectBytes]), true, CancellationToken.None);

        channel.Dispose();
        transport.CompleteWrite();
        await Assert.ThrowsAnyAsync<Exception>(() => body.WaitAsync(HangGuard, TestContext.Current.CancellationToken));
    }

    /// <summary>A transport whose writes complete when the test says; each write's bytes are handed to the test.</summary>
    private sealed class GatedTransport : IMqttChannel
    {
        private readonly System.Threading.Channels.Channel<byte[]> writes = System.Threading.Channels.Channel.CreateUnbounded<byte[]>();
        private TaskCompletionSource current = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Disposed { get; private set; }

        public X509Certificate2 ClientCertificate => null!;

        public EndPoint RemoteEndPoint => new IPEndPoint(IPAddress.Loopback, 1);

        public EndPoint LocalEndPoint => new IPEndPoint(IPAddress.Loopback, 2);

        public bool IsSecureConnection => true;

        public async Task<byte[]> NextWriteAsync() => await writes.Reader.ReadAsync().AsTask().WaitAsync(HangGuard);

        public void CompleteWrite() => Interlocked.Exchange(ref current, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

        public void FailWrite(Exception error) => Interlocked.Exchange(ref current, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetException(error);

        public Task WriteAsync(ReadOnlySequence<byte> buffer, bool isEndOfPacket, CancellationToken cancellationToken)
        {
            var gate = Volatile.Read(ref current);
            writes.Writer.TryWrite(buffer.ToArray());
            return Disposed ? Task.FromException(new ObjectDisposedException("transport")) : gate.Task;
        }

        public Task ConnectAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task DisconnectAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(0);

        public void Dispose() => Disposed = true;
    }
}
