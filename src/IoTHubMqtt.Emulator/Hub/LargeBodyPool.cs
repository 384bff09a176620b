namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// The arrays of large telemetry bodies (16 KB and more), used again once the log lets a message go and no reader was
/// ever handed it. A body is kept until the retention drops it, so each new one would otherwise come from memory the
/// garbage collector has just given back to the system (it frees the pinned heap's unused end after each full collection)
/// and every page of it would fault in again: at 64 KB a message, most of the hub's time. Arrays are kept by exact
/// length (a body is the whole array), up to a bound in all (64 MB by default): when it is reached, what is pooled is
/// left to the collector and pooling starts again, so lengths no longer sent do not hold it.
/// One pool an emulator: the device connections rent from it, its telemetry log gives back.
/// </summary>
internal sealed class LargeBodyPool(long maxPooledBytes = 64L * 1024 * 1024)
{
    /// <summary>The smallest body kept on the pinned heap and pooled.</summary>
    public const int MinimumBytes = 16 * 1024;

    private readonly Dictionary<int, Stack<byte[]>> free = [];
    private long pooledBytes;

    /// <summary>Bytes held for reuse now.</summary>
    public long PooledBytes
    {
        get
        {
            lock (free)
            {
                return pooledBytes;
            }
        }
    }

    /// <summary>A new array for a body of <paramref name="length"/> bytes (a large one on the pinned heap: kept past many
    /// young collections, which would otherwise copy it from generation to generation), its content undefined.</summary>
    public static byte[] Allocate(int length) =>
        GC.AllocateUninitializedArray<byte>(length, pinned: length >= MinimumBytes);

    /// <summary>An array of exactly <paramref name="length"/> bytes for a body, its content undefined.</summary>
    public byte[] Rent(int length)
    {
        if (length >= MinimumBytes)
        {
            lock (free)
            {
                if (free.TryGetValue(length, out var stack) && stack.TryPop(out var array))
                {
                    pooledBytes -= length;
                    return array;
                }
            }
        }

        return Allocate(length);
    }

    /// <summary>Takes back the array of a body nothing else holds (the log's, never handed to a reader).</summary>
    public void Return(byte[] body)
    {
        if (body.Length < MinimumBytes)
        {
            return;
        }

        lock (free)
        {
            if (pooledBytes + body.Length > maxPooledBytes)
            {
                // Full: what is there is of lengths no one asked for since (bodies of varying sizes); it goes, this stays.
                free.Clear();
                pooledBytes = 0;
                if (body.Length > maxPooledBytes)
                {
                    return;
                }
            }

            if (!free.TryGetValue(body.Length, out var stack))
            {
                free[body.Length] = stack = new Stack<byte[]>();
            }

            stack.Push(body);
            pooledBytes += body.Length;
        }
    }
}
