namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// Telemetry kept for the service to read, in arrival order with sequence numbers: hub-wide ones (the log's position,
/// served as the Event Hubs offset) and, as Event Hubs numbers them, ones per partition (<paramref name="partitionOf"/>).
/// </summary>
internal sealed class TelemetryLog(int capacity, Func<string, int> partitionOf)
{
    private readonly object gate = new();
    private readonly Queue<TelemetryMessage> messages = new();
    private readonly Dictionary<int, long> nextInPartition = [];
    private readonly Dictionary<int, PartitionIndex> partitions = [];
    private long nextSequence = 1;
    private readonly Arrivals arrivals = new();

    public long NextSequenceNumber
    {
        get
        {
            lock (gate)
            {
                return nextSequence;
            }
        }
    }

    public long Count
    {
        get
        {
            lock (gate)
            {
                return messages.Count;
            }
        }
    }

    public TelemetryMessage Append(Func<long, TelemetryMessage> create)
    {
        TaskCompletionSource? signal;
        TelemetryMessage message;
        lock (gate)
        {
            message = create(nextSequence++);
            message.PartitionSequenceNumber = NextInPartition(message.DeviceId);
            Enqueue(message);

            signal = arrivals.TakeWaiters();
        }

        signal?.TrySetResult();
        return message;
    }

    /// <summary>Restores persisted messages at start-up.</summary>
    public void Restore(IEnumerable<TelemetryMessage> restored)
    {
        lock (gate)
        {
            foreach (var message in restored.OrderBy(m => m.SequenceNumber))
            {
                if (message.PartitionSequenceNumber <= 0)
                {
                    message.PartitionSequenceNumber = NextInPartition(message.DeviceId); // kept before partitions were numbered
                }
                else
                {
                    var partition = partitionOf(message.DeviceId);
                    nextInPartition[partition] = Math.Max(nextInPartition.GetValueOrDefault(partition, 1), message.PartitionSequenceNumber + 1);
                }

                Enqueue(message);
                nextSequence = Math.Max(nextSequence, message.SequenceNumber + 1);
            }
        }
    }

    private void Enqueue(TelemetryMessage message)
    {
        messages.Enqueue(message);
        Partition(partitionOf(message.DeviceId)).Add(message);
        while (messages.Count > capacity)
        {
            var dropped = messages.Dequeue();
            Partition(partitionOf(dropped.DeviceId)).DropOldest();
        }
    }

    private PartitionIndex Partition(int partition)
    {
        if (!partitions.TryGetValue(partition, out var index))
        {
            partitions[partition] = index = new PartitionIndex();
        }

        return index;
    }

    /// <summary>
    /// A partition as Event Hubs describes it: the first sequence number it still holds, the last one enqueued (with its
    /// offset and time), and whether it holds none. An empty partition's last sequence number is one less than its first.
    /// </summary>
    public PartitionState DescribePartition(int partition)
    {
        lock (gate)
        {
            var next = nextInPartition.GetValueOrDefault(partition, 1);
            var index = partitions.GetValueOrDefault(partition);
            var first = index?.First;
            var last = index?.Last;
            return new PartitionState(first?.PartitionSequenceNumber ?? next, next - 1, last?.SequenceNumber, last?.EnqueuedTimeUtc, first is null);
        }
    }

    /// <summary>
    /// The partition sequence number a reader starts at: the first retained message <paramref name="startsAfter"/> picks
    /// (messages are tried oldest first), or the next one to be enqueued when none does.
    /// </summary>
    public long FirstInPartition(int partition, Func<TelemetryMessage, bool> startsAfter)
    {
        lock (gate)
        {
            if (partitions.GetValueOrDefault(partition) is { } index)
            {
                foreach (var message in index.Messages)
                {
                    if (startsAfter(message))
                    {
                        return message.PartitionSequenceNumber;
                    }
                }
            }

            return nextInPartition.GetValueOrDefault(partition, 1);
        }
    }

    /// <summary>
    /// Up to <paramref name="max"/> messages of a partition whose partition sequence number is ≥ <paramref name="fromPartitionSequence"/>,
    /// waiting up to <paramref name="wait"/> for the first one.
    /// </summary>
    public async Task<IReadOnlyList<TelemetryMessage>> ReadPartitionAsync(int partition, long fromPartitionSequence, int max, TimeSpan wait, CancellationToken cancellationToken = default)
    {
        return await arrivals.WaitForAsync(gate,
            () => partitions.GetValueOrDefault(partition)?.From(fromPartitionSequence, max) ?? [],
            wait, cancellationToken).ConfigureAwait(false);
    }

    private long NextInPartition(string deviceId)
    {
        var partition = partitionOf(deviceId);
        var next = nextInPartition.GetValueOrDefault(partition, 1);
        nextInPartition[partition] = next + 1;
        return next;
    }

    /// <summary>Messages with sequence number ≥ <paramref name="fromSequence"/>, waiting up to <paramref name="wait"/> for the first one.</summary>
    public async Task<IReadOnlyList<TelemetryMessage>> ReadAsync(long fromSequence, int max, string? deviceId, TimeSpan wait, CancellationToken cancellationToken = default,
        Func<TelemetryMessage, bool>? where = null)
    {
        return await arrivals.WaitForAsync(gate,
            () => messages.Where(m => m.SequenceNumber >= fromSequence && (deviceId is null || m.DeviceId == deviceId) && (where is null || where(m))).Take(max).ToList(),
            wait, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>What <c>$management</c> tells of a partition.</summary>
internal sealed record PartitionState(long BeginSequenceNumber, long LastSequenceNumber, long? LastOffset, DateTime? LastEnqueuedTimeUtc, bool IsEmpty);

/// <summary>The retained messages of one partition in order, found by partition sequence number without a scan.</summary>
internal sealed class PartitionIndex
{
    private readonly List<TelemetryMessage> items = [];
    private int head;

    public TelemetryMessage? First => head < items.Count ? items[head] : null;

    public TelemetryMessage? Last => head < items.Count ? items[^1] : null;

    public IEnumerable<TelemetryMessage> Messages
    {
        get
        {
            for (var i = head; i < items.Count; i++)
            {
                yield return items[i];
            }
        }
    }

    public void Add(TelemetryMessage message) => items.Add(message);

    public void DropOldest()
    {
        if (head < items.Count)
        {
            items[head++] = null!;
        }

        if (head > 1024 && head * 2 > items.Count)
        {
            items.RemoveRange(0, head);
            head = 0;
        }
    }

    public List<TelemetryMessage> From(long partitionSequence, int max)
    {
        // Sequence numbers increase along the list: binary search for the first one at or after the position.
        int lo = head, hi = items.Count;
        while (lo < hi)
        {
            var mid = lo + ((hi - lo) / 2);
            if (items[mid].PartitionSequenceNumber < partitionSequence)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        var count = Math.Min(max, items.Count - lo);
        return count <= 0 ? [] : items.GetRange(lo, count);
    }
}
