using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// The TCP stream under a device connection (and its TLS): it reads as <see cref="NetworkStream"/> does, and sends through
/// send operations every connection shares. A socket sent to through <see cref="NetworkStream"/> keeps the state of its
/// first send (about 360 bytes) for its life; a held device is sent a CONNACK and then, often, nothing for hours, so
/// thousands of held devices would each keep one. Here a send takes an operation from a small shared pool and gives it
/// back when it completes.
/// <para>
/// Errors are NetworkStream's: an <see cref="IOException"/> around the <see cref="SocketException"/>, and a cancelled send
/// ends as <see cref="OperationCanceledException"/>. Cancelling a send under way closes the socket (a send cannot be
/// cancelled on its own, and a TLS stream whose record was cut short cannot be written to again anyway).
/// </para>
/// <para>
/// Closing is orderly when the device's input is unread (the hub closes a connection in the middle of a burst: throttled,
/// or at a bad packet). Closing the socket then would reset the connection, and a reset can take with it what was sent
/// last: a device that learns of the reset from a send of its own may never read the acknowledgements already on their
/// way, and sends those messages again. So the hub's side ends first (its FIN follows everything sent), what the device
/// still sends is read and dropped until it closes its side, for <see cref="LingerBound"/> at most, and then the socket is
/// closed. With nothing unread the socket is closed at once.
/// </para>
/// </summary>
internal sealed class DeviceNetworkStream(Socket socket) : NetworkStream(socket, ownsSocket: false)
{
    /// <summary>How long a connection closed with the device's input unread waits for the device to close its side.</summary>
    internal static readonly TimeSpan LingerBound = TimeSpan.FromSeconds(2);

    /// <summary>Operations kept for the next sends; more are made while more sends are under way at once, and dropped after.</summary>
    private static readonly int PoolLimit = Environment.ProcessorCount * 8;

    private static readonly ConcurrentQueue<SendOperation> Pool = new();
    private static int pooled;

    private int closed;

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref closed) != 0, this);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        return buffer.IsEmpty ? ValueTask.CompletedTask : SendAsync(buffer, cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing); // the stream is done with; the socket is closed here
        if (disposing && Interlocked.Exchange(ref closed, 1) == 0)
        {
            Close(Socket);
        }
    }

    private static void Close(Socket socket)
    {
        try
        {
            if (socket.Available > 0)
            {
                socket.Shutdown(SocketShutdown.Send);
                _ = DrainThenCloseAsync(socket);
                return;
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Gone already, or reset by the device: nothing to end in order.
        }

        socket.Dispose();
    }

    /// <summary>Reads and drops what the device still sends until it closes its side (or the bound), then closes the socket.</summary>
    private static async Task DrainThenCloseAsync(Socket socket)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            using var bound = new CancellationTokenSource(LingerBound);
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, bound.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Reset by the device, or it kept sending past the bound: closed all the same.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            socket.Dispose();
        }
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        var operation = Rent();
        var reusable = false;
        try
        {
            using var cancellation = cancellationToken.CanBeCanceled
                ? cancellationToken.UnsafeRegister(static state => ((Socket)state!).Dispose(), Socket)
                : default;
            while (!buffer.IsEmpty)
            {
                operation.SetBuffer(MemoryMarshal.AsMemory(buffer));
                reusable = false;
                var pending = operation.StartSend(Socket);
                reusable = true; // started: it completes, whatever happens to the socket
                await pending.ConfigureAwait(false);
                if (operation.SocketError != SocketError.Success)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var error = new SocketException((int)operation.SocketError);
                    throw new IOException($"Unable to write data to the transport connection: {error.Message}.", error);
                }

                buffer = buffer[operation.BytesTransferred..];
            }
        }
        catch (ObjectDisposedException) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(cancellationToken);
        }
        finally
        {
            operation.SetBuffer(Memory<byte>.Empty);
            if (reusable)
            {
                Return(operation);
            }
            else
            {
                operation.Dispose();
            }
        }
    }

    private static SendOperation Rent()
    {
        if (Pool.TryDequeue(out var operation))
        {
            Interlocked.Decrement(ref pooled);
            return operation;
        }

        return new SendOperation();
    }

    private static void Return(SendOperation operation)
    {
        if (Interlocked.Increment(ref pooled) <= PoolLimit)
        {
            Pool.Enqueue(operation);
        }
        else
        {
            Interlocked.Decrement(ref pooled);
            operation.Dispose();
        }
    }

    /// <summary>One send on whichever socket it is started on, awaited as a <see cref="ValueTask"/>.</summary>
    private sealed class SendOperation() : SocketAsyncEventArgs(unsafeSuppressExecutionContextFlow: true), IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<bool> completion;

        public ValueTask StartSend(Socket socket)
        {
            completion.Reset();
            if (!socket.SendAsync(this))
            {
                completion.SetResult(true);
            }

            return new ValueTask(this, completion.Version);
        }

        public void GetResult(short token) => completion.GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => completion.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            completion.OnCompleted(continuation, state, token, flags);

        protected override void OnCompleted(SocketAsyncEventArgs e) => completion.SetResult(true);
    }
}
