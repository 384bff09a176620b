
namespace IoTHubMqtt.Esp32.Simulator;

/// <summary>
/// One host session on the pty master, from the host opening the slave to its closing it (a read then returns 0). The line
/// speed the host set on its end is read from the pty at each read and write, so a host that changes its baud rate without
/// telling the chip is noticed as a UART would notice it: as noise.
/// </summary>
internal sealed class PtySessionStream(PseudoTerminal pty) : Stream, IHostBaudRate
{
    private static readonly TimeSpan Slice = TimeSpan.FromMilliseconds(50);

    public int HostBaudRate => pty.HostBaudRate;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // poll(2) in short slices on a pool thread, so that stopping the simulator is never held up by a silent host.
        var chunk = new byte[Math.Min(buffer.Length, 65536)];
        var n = await Task.Run(
            () =>
            {
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var read = pty.Read(chunk, Slice);
                    if (read != 0)
                    {
                        return Math.Max(read, 0);
                    }
                }
            },
            cancellationToken).ConfigureAwait(false);
        chunk.AsMemory(0, n).CopyTo(buffer);
        return n;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        pty.Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => pty.Write(buffer.AsSpan(offset, count));

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
