using System.Buffers;
using System.Net.Security;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// The stream under MQTTnet for one device connection (TCP or TLS): it reads ahead, follows the MQTT framing of what it
/// hands out (<see cref="MqttFrameGuard"/>: an oversized, malformed or forbidden packet ends the connection before MQTTnet
/// allocates or decodes it) and sends the packets written while more of the device's input is already here in one write.
/// <para>
/// A device with many messages outstanding sends them together; each is answered with a PUBACK of four bytes, and a write
/// each costs a TLS record and a system call at both ends (on loopback, half the hub's time at 64-byte messages). So a
/// write made while read-ahead input remains is held (up to <see cref="MaxHeldBytes"/>) and leaves with the next write
/// made once that input is used up, or just before the reader waits for the network again: the answers to one burst go
/// out together, and nothing is held while the connection waits for the device.
/// </para>
/// <para>
/// While it waits, the connection holds no buffer: a zero-byte read waits for bytes, and the read-ahead buffer (one TLS
/// record's worth, from the shared pool) is taken only when they arrive and given back once used up. Over TLS on OpenSSL,
/// the buffers of the memory BIOs the records passed through (which keep the size of the largest record they carried, up
/// to about 22 KB each) are given back too before the wait (<see cref="OpenSslBufferRelease"/>).
/// </para>
/// </summary>
internal sealed class MqttServerStream(Stream inner, int maxRemainingLength, Action<string>? onViolation = null) : Stream
{
    /// <summary>The most read ahead at a time: a TLS record's plaintext.</summary>
    public const int ReadAheadBytes = 16 * 1024;

    /// <summary>The most held for the next write; a write that would go beyond goes out at once with what is held.</summary>
    public const int MaxHeldBytes = 16 * 1024;

    /// <summary>How long closing waits to send what is held (a guard: a socket write that blocks is a peer that reads nothing).</summary>
    private static readonly TimeSpan ClosingSendBound = TimeSpan.FromSeconds(5);

    private readonly MqttFrameGuard guard = new(maxRemainingLength, onViolation);
    private readonly SemaphoreSlim writeGate = new(1, 1);

    // What the reader and writers share is guarded by a lock on the frame guard (private to this stream, so no one else
    // locks it): one object less for each of thousands of held connections than a lock object of its own.
    private object Sync => guard;

    // Read-ahead input: set and used up by the one reader; its count is read by writers under Sync.
    private byte[]? input;
    private int inputOffset;
    private int inputCount;

    // Writes held until the read-ahead input is used up.
    private byte[]? held;
    private int heldCount;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>Names the device in what the frame guard reports by <paramref name="clientId"/> from now on.</summary>
    public void NameDevice(string clientId) => guard.NameDevice(clientId);

    /// <summary>The client id the frame guard names the device by (null before its CONNECT).</summary>
    public string? DeviceName => guard.ClientId;

    /// <summary>Whether read-ahead input is here (the next read completes without waiting).</summary>
    public bool HasInput => inputCount > 0;

    /// <summary>
    /// Completes when the connection has input or has ended (the next read then says which; the result means nothing),
    /// holding no buffer while it waits; what is held for the device is sent first.
    /// </summary>
    public ValueTask<int> WaitForInputAsync(CancellationToken cancellationToken)
    {
        if (inputCount > 0)
        {
            return new ValueTask<int>(0);
        }

        if (Volatile.Read(ref heldCount) > 0)
        {
            return SendHeldThenWaitAsync(cancellationToken);
        }

        ReleaseIdleTlsBuffers();
        return inner.ReadAsync(Memory<byte>.Empty, cancellationToken);
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return inputCount > 0 ? new ValueTask<int>(0) : inner.ReadAsync(buffer, cancellationToken);
        }

        return inputCount > 0 ? new ValueTask<int>(Take(buffer.Span)) : FillAndTakeAsync(buffer, cancellationToken);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        TryHold(buffer.Span) ? ValueTask.CompletedTask : WriteThroughAsync(buffer, cancellationToken);

    /// <summary>
    /// Takes the write gate for writes that must leave in order with no other write between them (one packet's header
    /// and payload): make them with <see cref="WriteInSequenceAsync"/>, then <see cref="EndWrites"/>.
    /// </summary>
    public Task BeginWritesAsync(CancellationToken cancellationToken) => writeGate.WaitAsync(cancellationToken);

    /// <summary>As <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>, by the writer holding the write gate.</summary>
    public ValueTask WriteInSequenceAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken) =>
        TryHold(buffer.Span) ? ValueTask.CompletedTask : WriteHeldThenAsync(buffer, cancellationToken);

    /// <summary>Gives back the write gate <see cref="BeginWritesAsync"/> took.</summary>
    public void EndWrites() => writeGate.Release();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        await WriteThroughAsync(ReadOnlyMemory<byte>.Empty, cancellationToken).ConfigureAwait(false);
        await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            SendHeldBeforeClosingAsync().AsTask().GetAwaiter().GetResult();
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await SendHeldBeforeClosingAsync().ConfigureAwait(false);
        await inner.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Keeps <paramref name="buffer"/> for the next write when read-ahead input remains and it fits.</summary>
    private bool TryHold(ReadOnlySpan<byte> buffer)
    {
        lock (Sync)
        {
            if (inputCount > 0 && heldCount + buffer.Length <= MaxHeldBytes)
            {
                held ??= ArrayPool<byte>.Shared.Rent(MaxHeldBytes);
                buffer.CopyTo(held.AsSpan(heldCount));
                heldCount += buffer.Length;
                return true;
            }
        }

        return false;
    }

    private int Take(Span<byte> destination)
    {
        var count = Math.Min(destination.Length, inputCount);
        var taken = input!.AsSpan(inputOffset, count);
        guard.Inspect(taken); // what MQTTnet is about to see, no further: a bad packet ends the connection after the ones before it
        taken.CopyTo(destination);
        lock (Sync)
        {
            inputOffset += count;
            inputCount -= count;
            if (inputCount == 0)
            {
                ArrayPool<byte>.Shared.Return(input!);
                input = null;
            }
        }

        return count;
    }

    private async ValueTask<int> FillAndTakeAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        // The input is used up: what was held for it goes now, and the wait for more holds no buffer (SslStream rents its
        // record buffer only once a record arrives, too).
        await WaitForInputAsync(cancellationToken).ConfigureAwait(false);
        var chunk = ArrayPool<byte>.Shared.Rent(ReadAheadBytes);
        int read;
        try
        {
            read = await inner.ReadAsync(chunk.AsMemory(0, ReadAheadBytes), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(chunk);
            throw;
        }

        if (read == 0)
        {
            ArrayPool<byte>.Shared.Return(chunk);
            return 0;
        }

        lock (Sync)
        {
            input = chunk;
            inputOffset = 0;
            inputCount = read;
        }

        return Take(destination.Span);
    }

    private async ValueTask<int> SendHeldThenWaitAsync(CancellationToken cancellationToken)
    {
        await WriteThroughAsync(ReadOnlyMemory<byte>.Empty, cancellationToken).ConfigureAwait(false);
        ReleaseIdleTlsBuffers();
        return await inner.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Called by the reader before it waits (so no read is in progress): when no write is in progress either, the TLS
    /// connection's BIO buffers are given back. A write under way keeps them until the next wait.
    /// </summary>
    private void ReleaseIdleTlsBuffers()
    {
        if (inner is SslStream ssl && OpenSslBufferRelease.Available && writeGate.Wait(0))
        {
            try
            {
                OpenSslBufferRelease.ReleaseIdleBuffers(ssl);
            }
            finally
            {
                writeGate.Release();
            }
        }
    }

    /// <summary>
    /// What is held is sent before the connection closes: the hub closes a device's connection in the middle of a burst
    /// (throttled, or a bad packet), and the messages before that point were taken and must be acknowledged, or the device
    /// sends them again, and again if the same point closes the connection each time. Best effort, bounded in time.
    /// </summary>
    private async ValueTask SendHeldBeforeClosingAsync()
    {
        if (Volatile.Read(ref heldCount) == 0)
        {
            return;
        }

        using var bound = new CancellationTokenSource(ClosingSendBound);
        try
        {
            await WriteThroughAsync(ReadOnlyMemory<byte>.Empty, bound.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or NotSupportedException or InvalidOperationException)
        {
            // The connection is already gone: the device sends again what was not acknowledged.
        }
    }

    /// <summary>Writes what is held, then <paramref name="buffer"/>: in one write when they fit together.</summary>
    private async ValueTask WriteThroughAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        if (buffer.IsEmpty && Volatile.Read(ref heldCount) == 0)
        {
            return;
        }

        await writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WriteHeldThenAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            writeGate.Release();
        }
    }

    /// <summary>Under the write gate: writes what is held, then <paramref name="buffer"/>, in one write when they fit together.</summary>
    private async ValueTask WriteHeldThenAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        byte[]? pending;
        int count;
        lock (Sync)
        {
            (pending, count) = (held, heldCount);
            (held, heldCount) = (null, 0);
        }

        if (pending is null)
        {
            if (!buffer.IsEmpty)
            {
                await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        try
        {
            if (count + buffer.Length <= pending.Length)
            {
                buffer.CopyTo(pending.AsMemory(count));
                count += buffer.Length;
                buffer = ReadOnlyMemory<byte>.Empty;
            }

            await inner.WriteAsync(pending.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
            if (!buffer.IsEmpty)
            {
                await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(pending);
        }
    }
}
