using System.Threading.Channels;

namespace IoTHubMqtt.Core.Esp32.Transport;

/// <summary>
/// Base for ports: a background loop reads the underlying stream into a queue, so a read with a timeout never
/// disturbs the stream (cancelling a pending serial or socket read is not reliable everywhere).
/// </summary>
public abstract class PumpedPort : IEsp32Port
{
    private readonly Channel<byte[]> incoming = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly CancellationTokenSource stop = new();
    private byte[]? pending;
    private int pendingOffset;
    private Task? pump;
    private Exception? failure;
    private int disposed;

    protected PumpedPort(string name) => Name = name;

    public string Name { get; }

    public abstract bool HasControlLines { get; }

    public abstract int BaudRate { get; }

    /// <summary>Starts the read loop; call once the underlying stream is open.</summary>
    protected void StartPump() => pump = Task.Run(PumpAsync);

    /// <summary>Reads from the underlying stream; 0 = closed.</summary>
    protected abstract ValueTask<int> ReadCoreAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Hook for protocol layers (RFC 2217) that filter the raw bytes; returns the data bytes.</summary>
    protected virtual ReadOnlyMemory<byte> Filter(ReadOnlyMemory<byte> raw) => raw;

    public async ValueTask<int> ReadAsync(Memory<byte> buffer, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        if (pending is null)
        {
            if (!incoming.Reader.TryRead(out pending))
            {
                using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timer.CancelAfter(timeout);
                try
                {
                    if (!await incoming.Reader.WaitToReadAsync(timer.Token).ConfigureAwait(false))
                    {
                        throw new IOException($"{Name} was closed.", failure);
                    }
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return 0;
                }

                if (!incoming.Reader.TryRead(out pending))
                {
                    return 0;
                }
            }

            pendingOffset = 0;
        }

        var count = Math.Min(buffer.Length, pending.Length - pendingOffset);
        pending.AsMemory(pendingOffset, count).CopyTo(buffer);
        pendingOffset += count;
        if (pendingOffset >= pending.Length)
        {
            pending = null;
        }

        return count;
    }

    public abstract ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default);

    public abstract ValueTask SetControlLinesAsync(bool? dtr, bool? rts, CancellationToken cancellationToken = default);

    public virtual bool CanSetControlLinesTogether => false;

    public virtual ValueTask SetControlLinesTogetherAsync(bool dtr, bool rts, CancellationToken cancellationToken = default) => SetControlLinesAsync(dtr, rts, cancellationToken);

    public abstract ValueTask SetBaudRateAsync(int baudRate, CancellationToken cancellationToken = default);

    public void DiscardInput()
    {
        pending = null;
        while (incoming.Reader.TryRead(out _))
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        await stop.CancelAsync().ConfigureAwait(false);
        await CloseCoreAsync().ConfigureAwait(false);
        if (pump is not null)
        {
            try
            {
                await pump.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
        }

        stop.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Closes the underlying stream (ends the read loop).</summary>
    protected abstract ValueTask CloseCoreAsync();

    private async Task PumpAsync()
    {
        var buffer = new byte[16384];
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var n = await ReadCoreAsync(buffer, stop.Token).ConfigureAwait(false);
                if (n <= 0)
                {
                    break;
                }

                var data = Filter(buffer.AsMemory(0, n));
                if (data.Length > 0)
                {
                    incoming.Writer.TryWrite(data.ToArray());
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            failure = ex;
        }
        finally
        {
            incoming.Writer.TryComplete();
        }
    }
}
