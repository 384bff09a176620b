using System.Collections.Concurrent;
using System.Numerics;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// Buffers for the UTF-8 bodies of telemetry messages (Send-IoTHubMessage), given back once the hub has acknowledged their message
/// and reused by the next ones (in this call or another, on any connection of the session): a stream of large
/// messages then allocates and clears no new memory a message. Sizes are powers of two from 4 KB; smaller bodies get
/// arrays of their own. Safe from any thread.
/// <para>
/// How much is kept follows what the senders need: at least <see cref="BufferPool.MinimumKeptBytes"/>, and up to as
/// many bytes as had to be newly allocated since the last <see cref="Trim"/> (what was in flight at once when many
/// devices send large messages together: 100 devices with 20 messages of 64 KB each hold 128 MB until acknowledged),
/// at most <see cref="BufferPool.MaximumKeptBytes"/>. Without that, a burst larger than a fixed pool allocates every
/// body anew and the garbage collector copies each one between generations while it waits for its acknowledgement.
/// A device client going away trims the pool back to the minimum.
/// </para>
/// </summary>
public static class PayloadBuffers
{
    /// <summary>Bodies below this many bytes are not pooled: allocating them costs less than the bookkeeping.</summary>
    public const int PooledFrom = BufferPool.PooledFrom;

    private static readonly BufferPool Shared = new();

    /// <summary>A buffer of at least <paramref name="length"/> bytes (exactly that many below <see cref="PooledFrom"/>).</summary>
    public static byte[] Rent(int length) => Shared.Rent(length);

    /// <summary>Takes a buffer back for reuse (null: nothing to take); its message must be finished (acknowledged or given up).</summary>
    public static void Return(byte[]? buffer) => Shared.Return(buffer);

    /// <summary>Drops what is kept beyond the minimum and forgets past demand (a device client was disposed).</summary>
    public static void Trim() => Shared.Trim();
}

/// <summary>The pool behind <see cref="PayloadBuffers"/> (an instance of its own for tests).</summary>
internal sealed class BufferPool
{
    public const int PooledFrom = 4 * 1024;

    /// <summary>Kept for reuse whatever the demand.</summary>
    public const long MinimumKeptBytes = 32L * 1024 * 1024;

    /// <summary>Kept for reuse at most, however much was in flight at once.</summary>
    public const long MaximumKeptBytes = 256L * 1024 * 1024;

    private const int MinimumShift = 12;

    // Queues, not bags: a bag keeps a list a thread and a thread whose own list is empty searches every other thread's,
    // which costs most when many runspaces send at once (a runspace pool, ForEach-Object -Parallel).
    private readonly ConcurrentQueue<byte[]>[] sizes = Enumerable.Range(0, 8).Select(_ => new ConcurrentQueue<byte[]>()).ToArray();
    private long kept;
    private long allocated;

    /// <summary>Bytes kept for reuse now.</summary>
    public long KeptBytes => Interlocked.Read(ref kept);

    public byte[] Rent(int length)
    {
        if (length < PooledFrom)
        {
            return new byte[length];
        }

        var shift = Math.Max(MinimumShift, 32 - BitOperations.LeadingZeroCount((uint)(length - 1)));
        var index = shift - MinimumShift;
        if (index >= sizes.Length)
        {
            return new byte[length];
        }

        if (sizes[index].TryDequeue(out var buffer))
        {
            Interlocked.Add(ref kept, -buffer.Length);
            return buffer;
        }

        // The pool ran dry: this much more was needed at once, and may be kept when it comes back.
        Interlocked.Add(ref allocated, 1L << shift);
        return new byte[1 << shift];
    }

    public void Return(byte[]? buffer)
    {
        if (buffer is null || buffer.Length < PooledFrom || !BitOperations.IsPow2(buffer.Length))
        {
            return;
        }

        var index = BitOperations.Log2((uint)buffer.Length) - MinimumShift;
        if (index >= sizes.Length)
        {
            return;
        }

        var budget = Math.Clamp(Interlocked.Read(ref allocated), MinimumKeptBytes, MaximumKeptBytes);
        if (Interlocked.Add(ref kept, buffer.Length) <= budget)
        {
            sizes[index].Enqueue(buffer);
        }
        else
        {
            Interlocked.Add(ref kept, -buffer.Length);
        }
    }

    public void Trim()
    {
        Interlocked.Exchange(ref allocated, 0);
        for (var index = sizes.Length - 1; index >= 0 && Interlocked.Read(ref kept) > MinimumKeptBytes; index--)
        {
            while (Interlocked.Read(ref kept) > MinimumKeptBytes && sizes[index].TryDequeue(out var buffer))
            {
                Interlocked.Add(ref kept, -buffer.Length);
            }
        }
    }
}
