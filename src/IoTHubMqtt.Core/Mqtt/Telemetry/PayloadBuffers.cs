using System.Collections.Concurrent;
using System.Numerics;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// Buffers for the UTF-8 bodies of telemetry messages (Send-IoTHubMessage), given back once the hub has acknowledged their message
/// and reused by the next ones (in this call or another, on any connection of the session): a stream of large
/// messages then allocates and clears no new memory a message. Sizes are powers of two from 4 KB; smaller bodies get
/// arrays of their own. At most <see cref="KeptBytes"/> are kept for reuse. Safe from any thread.
/// </summary>
public static class PayloadBuffers
{
    /// <summary>Bodies below this many bytes are not pooled: allocating them costs less than the bookkeeping.</summary>
    public const int PooledFrom = 4 * 1024;

    /// <summary>The most memory kept for reuse between messages.</summary>
    public const long KeptBytes = 32L * 1024 * 1024;

    private const int MinimumShift = 12;
    // A queue, not a bag: a bag keeps a list a thread and a thread whose own list is empty searches every other thread's,
    // which costs most when many runspaces send at once (a runspace pool, ForEach-Object -Parallel).
    private static readonly ConcurrentQueue<byte[]>[] Sizes = Enumerable.Range(0, 8).Select(_ => new ConcurrentQueue<byte[]>()).ToArray();
    private static long kept;

    /// <summary>A buffer of at least <paramref name="length"/> bytes (exactly that many below <see cref="PooledFrom"/>).</summary>
    public static byte[] Rent(int length)
    {
        if (length < PooledFrom)
        {
            return new byte[length];
        }

        var shift = Math.Max(MinimumShift, 32 - BitOperations.LeadingZeroCount((uint)(length - 1)));
        var index = shift - MinimumShift;
        if (index < Sizes.Length && Sizes[index].TryDequeue(out var buffer))
        {
            Interlocked.Add(ref kept, -buffer.Length);
            return buffer;
        }

        return new byte[1 << shift];
    }

    /// <summary>Takes a buffer back for reuse (null: nothing to take); its message must be finished (acknowledged or given up).</summary>
    public static void Return(byte[]? buffer)
    {
        if (buffer is null || buffer.Length < PooledFrom || !BitOperations.IsPow2(buffer.Length))
        {
            return;
        }

        var index = BitOperations.Log2((uint)buffer.Length) - MinimumShift;
        if (index < Sizes.Length && Interlocked.Add(ref kept, buffer.Length) <= KeptBytes)
        {
            Sizes[index].Enqueue(buffer);
        }
        else if (index < Sizes.Length)
        {
            Interlocked.Add(ref kept, -buffer.Length);
        }
    }
}
