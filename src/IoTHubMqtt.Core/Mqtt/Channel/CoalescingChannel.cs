using System.Buffers;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using MQTTnet.Channel;
using MQTTnet.Exceptions;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// Gathers the packets written while the connection is busy and writes them to the transport together.
/// <para>
/// MQTTnet's channel adapter writes each packet to its channel (<c>IMqttChannel.WriteAsync</c>) and, over TLS, each
/// write becomes at least one TLS record and one socket send. This channel sits between the adapter and the real
/// channel (TCP/TLS or WebSocket): a write copies the packet into a buffer and returns; one writer at a time takes
/// everything buffered and writes it to the real channel in a single call. Packets that become ready while that write
/// is under way leave together in the next one, so a stream of publishes travels in as few records and sends as the
/// transport allows, with no timer and no added delay for a lone packet (it leaves as soon as the writer runs).
/// </para>
/// <para>
/// Writes wait only when more than <see cref="HighWaterBytes"/> are buffered (back-pressure from a slow network). A
/// failed write fails every later write and closes the real channel, so MQTTnet's receive loop sees the connection
/// end as it would for a failed direct write. <see cref="DisconnectAsync"/> writes what is buffered first, so a
/// DISCONNECT (and any PUBACK before it) reaches the server.
/// </para>
/// </summary>
internal sealed class CoalescingChannel : IMqttChannel
{
    /// <summary>Buffered bytes above which writers wait for the transport.</summary>
    public const int HighWaterBytes = 256 * 1024;

    /// <summary>A segment this large (a message body) is written from where it is, not copied into the buffer.</summary>
    public const int DirectBytes = 16 * 1024;

    private const int InitialBufferBytes = 16 * 1024;

    private readonly IMqttChannel inner;
    private readonly object gate = new();
    private readonly Action flushAction;
    private byte[] pending = new byte[InitialBufferBytes];
    private byte[] spare = new byte[InitialBufferBytes];
    private int pendingLength;
    private bool writing;
    private Exception? failure;
    private TaskCompletionSource? room;
    private TaskCompletionSource? drained;
    private List<Direct> directs = [];
    private List<Direct> spareDirects = [];
    private long batches;
    private long packets;

    public CoalescingChannel(IMqttChannel inner)
    {
        this.inner = inner;
        flushAction = () => _ = WriteBufferedAsync();
    }

    public X509Certificate2 ClientCertificate => inner.ClientCertificate;

    public EndPoint RemoteEndPoint => inner.RemoteEndPoint;

    public EndPoint LocalEndPoint => inner.LocalEndPoint;

    public bool IsSecureConnection => inner.IsSecureConnection;

    /// <summary>How many writes to the real channel carried the <see cref="Packets"/> written so far.</summary>
    public long Batches => Interlocked.Read(ref batches);

    /// <summary>How many packets were written to this channel.</summary>
    public long Packets => Interlocked.Read(ref packets);

    public Task ConnectAsync(CancellationToken cancellationToken) => inner.ConnectAsync(cancellationToken);

    public async Task DisconnectAsync(CancellationToken cancellationToken)
    {
        Task? wait;
        lock (gate)
        {
            wait = writing && failure is null ? (drained ??= NewSignal()).Task : null;
        }

        if (wait is not null)
        {
            try
            {
                await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or MqttCommunicationException)
            {
                // Closing anyway: what was not written is lost with the connection, as for a direct write.
            }
        }

        await inner.DisconnectAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.ReadAsync(buffer, offset, count, cancellationToken);

    public Task WriteAsync(ReadOnlySequence<byte> buffer, bool isEndOfPacket, CancellationToken cancellationToken)
    {
        bool start;
        var inPlace = buffer.Length >= DirectBytes;
        Task result = Task.CompletedTask;
        lock (gate)
        {
            if (failure is not null)
            {
                return Task.FromException(Failed());
            }

            if (inPlace)
            {
                // Written in place, in its turn after what is buffered before it; the caller waits for that write (and is
                // not released by cancellation), so the body stays untouched until it has left.
                var direct = new Direct(pendingLength, buffer, NewSignal());
                directs.Add(direct);
                result = direct.Written.Task;
            }
            else
            {
                Append(buffer);
            }

            if (isEndOfPacket)
            {
                packets++;
            }

            start = !writing;
            writing = true;
            if (pendingLength > HighWaterBytes && !inPlace)
            {
                result = (room ??= NewSignal()).Task;
            }
        }

        if (start)
        {
            // The writer runs on the thread pool, so the caller goes on producing packets meanwhile.
            ThreadPool.UnsafeQueueUserWorkItem(static action => action(), flushAction, preferLocal: false);
        }

        return result.IsCompleted || !cancellationToken.CanBeCanceled || inPlace ? result : result.WaitAsync(cancellationToken);
    }

    public void Dispose()
    {
        lock (gate)
        {
            failure ??= new ObjectDisposedException(nameof(CoalescingChannel));
            ReleaseWaiters();
        }

        inner.Dispose();
    }

    private async Task WriteBufferedAsync()
    {
        while (true)
        {
            byte[] batch;
            int length;
            List<Direct> inPlace;
            lock (gate)
            {
                if ((pendingLength == 0 && directs.Count == 0) || failure is not null)
                {
                    writing = false;
                    ReleaseWaiters();
                    return;
                }

                batch = pending;
                length = pendingLength;
                pending = spare;
                spare = batch;
                pendingLength = 0;
                inPlace = directs;
                directs = spareDirects;
                spareDirects = inPlace;
                room?.TrySetResult();
                room = null;
            }

            var done = 0;
            try
            {
                // The buffered bytes, with each in-place segment written at its place among them.
                var written = 0;
                foreach (var direct in inPlace)
                {
                    if (direct.Offset > written)
                    {
                        await WriteInnerAsync(new ReadOnlySequence<byte>(batch, written, direct.Offset - written)).ConfigureAwait(false);
                        written = direct.Offset;
                    }

                    await WriteInnerAsync(direct.Data).ConfigureAwait(false);
                    direct.Written.TrySetResult();
                    done++;
                }

                if (length > written)
                {
                    await WriteInnerAsync(new ReadOnlySequence<byte>(batch, written, length - written)).ConfigureAwait(false);
                }
            }
            catch (Exception ex)
            {
                // Closed first, so a writer that learns of the failure finds the connection closed; the receive loop
                // learns of it by its read failing, as after a direct write.
                inner.Dispose();
                lock (gate)
                {
                    failure ??= ex;
                    writing = false;
                    foreach (var direct in inPlace.Skip(done).Concat(directs))
                    {
                        Fail(direct.Written, Failed());
                    }

                    inPlace.Clear();
                    directs.Clear();
                    ReleaseWaiters();
                }

                return;
            }

            inPlace.Clear();
        }
    }

    private Task WriteInnerAsync(ReadOnlySequence<byte> data)
    {
        batches++;
        return inner.WriteAsync(data, true, CancellationToken.None);
    }

    private void Append(ReadOnlySequence<byte> buffer)
    {
        var needed = pendingLength + (int)buffer.Length;
        if (needed > pending.Length)
        {
            var larger = new byte[Math.Max(needed, pending.Length * 2)];
            pending.AsSpan(0, pendingLength).CopyTo(larger);
            pending = larger;
        }

        buffer.CopyTo(pending.AsSpan(pendingLength));
        pendingLength = needed;
    }

    private void ReleaseWaiters()
    {
        if (failure is null)
        {
            room?.TrySetResult();
            drained?.TrySetResult();
        }
        else
        {
            // A writer or a disconnect that stopped waiting (cancelled) leaves these unread: mark them observed.
            Fail(room, Failed());
            Fail(drained, Failed());
            foreach (var direct in directs)
            {
                Fail(direct.Written, Failed());
            }

            directs.Clear();
        }

        room = null;
        drained = null;
    }

    private MqttCommunicationException Failed() =>
        failure as MqttCommunicationException ?? new MqttCommunicationException("The connection is closed: " + failure?.Message, failure);

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A segment written where it is, after the buffered bytes before <see cref="Offset"/>.</summary>
    private sealed record Direct(int Offset, ReadOnlySequence<byte> Data, TaskCompletionSource Written);

    private static void Fail(TaskCompletionSource? signal, Exception error)
    {
        if (signal is not null && signal.TrySetException(error))
        {
            _ = signal.Task.Exception;
        }
    }
}
