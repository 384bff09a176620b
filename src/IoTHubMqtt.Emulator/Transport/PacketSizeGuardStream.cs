namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// Follows MQTT framing on the bytes a client sends and ends the connection (IOException) when a packet declares
/// a remaining length above the limit or a malformed length, before the MQTT layer allocates a buffer of that size.
/// Writes pass through unchanged.
/// </summary>
internal sealed class PacketSizeGuardStream(Stream inner, int maxRemainingLength) : Stream
{
    private readonly MqttFrameGuard guard = new(maxRemainingLength);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var read = inner.Read(buffer, offset, count);
        Inspect(buffer.AsSpan(offset, read));
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Inspect(buffer.Span[..read]);
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => inner.DisposeAsync();

    private void Inspect(ReadOnlySpan<byte> data) => guard.Inspect(data);
}

/// <summary>Follows MQTT fixed headers across reads and throws <see cref="IOException"/> on an oversized or malformed remaining length.</summary>
internal sealed class MqttFrameGuard(int maxRemainingLength)
{
    private State state = State.Type;
    private int length;
    private int multiplier;
    private int lengthBytes;
    private int remaining;

    private enum State
    {
        Type,
        Length,
        Body,
    }

    public void Inspect(ReadOnlySpan<byte> data)
    {
        var i = 0;
        while (i < data.Length)
        {
            switch (state)
            {
                case State.Type:
                    state = State.Length;
                    length = 0;
                    multiplier = 1;
                    lengthBytes = 0;
                    i++;
                    break;
                case State.Length:
                    var b = data[i++];
                    length += (b & 0x7F) * multiplier;
                    multiplier *= 128;
                    lengthBytes++;
                    if (length > maxRemainingLength)
                    {
                        throw new IOException($"An MQTT packet of {length} bytes is larger than the {maxRemainingLength} allowed.");
                    }

                    if ((b & 0x80) == 0)
                    {
                        remaining = length;
                        state = remaining == 0 ? State.Type : State.Body;
                    }
                    else if (lengthBytes == 4)
                    {
                        throw new IOException("An MQTT packet has a malformed remaining length.");
                    }

                    break;
                default:
                    var skip = Math.Min(remaining, data.Length - i);
                    i += skip;
                    remaining -= skip;
                    if (remaining == 0)
                    {
                        state = State.Type;
                    }

                    break;
            }
        }
    }
}
