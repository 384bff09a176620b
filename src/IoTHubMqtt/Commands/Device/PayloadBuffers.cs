namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// Buffers for the UTF-8 bodies Send-IoTHubMessage encodes, given back once the hub has acknowledged their message
/// and reused by the next ones: a stream of large messages then allocates (and clears) no new memory a message.
/// Sizes are powers of two from 4 KB; smaller bodies get arrays of their own. Used on the pipeline thread only.
/// </summary>
internal sealed class PayloadBuffers
{
    /// <summary>Bodies below this many bytes are not pooled: allocating them costs less than the bookkeeping.</summary>
    public const int PooledFrom = 4 * 1024;

    private const int MinimumShift = 12;
    private const int KeptPerSize = 512;
    private readonly Stack<byte[]>?[] sizes = new Stack<byte[]>?[20];

    /// <summary>A buffer of at least <paramref name="length"/> bytes (exactly that many below <see cref="PooledFrom"/>).</summary>
    public byte[] Rent(int length)
    {
        if (length < PooledFrom)
        {
            return new byte[length];
        }

        var shift = Math.Max(MinimumShift, 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(length - 1)));
        var index = shift - MinimumShift;
        return index < sizes.Length && sizes[index] is { Count: > 0 } stack ? stack.Pop() : new byte[1 << shift];
    }

    /// <summary>Takes a buffer back for reuse; its message must be finished (acknowledged or given up).</summary>
    public void Return(byte[] buffer)
    {
        if (buffer.Length < PooledFrom || !System.Numerics.BitOperations.IsPow2(buffer.Length))
        {
            return;
        }

        var index = System.Numerics.BitOperations.Log2((uint)buffer.Length) - MinimumShift;
        if (index < sizes.Length)
        {
            var stack = sizes[index] ??= new Stack<byte[]>();
            if (stack.Count < KeptPerSize)
            {
                stack.Push(buffer);
            }
        }
    }
}
