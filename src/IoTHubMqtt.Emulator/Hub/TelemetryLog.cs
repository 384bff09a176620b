namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// Telemetry kept for the service to read, in arrival order with sequence numbers: hub-wide ones (the log's position,
/// served as the Event Hubs offset) and, as Event Hubs numbers them, ones per partition (<paramref name="partitionOf"/>).
/// The retention is the newest <paramref name="capacity"/> messages, none older than <paramref name="maxAge"/> on the
/// hub's clock; the store on disk follows it (<see cref="OldestSequenceNumber"/> tells it what it may prune).
/// </summary>
internal sealed class TelemetryLog(int capacity, Func<string, int> partitionOf, TimeProvider? time = null, TimeSpan? maxAge = null, LargeBodyPool? bodies = null)
{
    private readonly object gate = new();
    // In sequence order; the kept ones start at index 'head' (dropped ones are cleared and compacted away in bulk).
    private readonly List<TelemetryMessage> messages = [];
    private int head;
    private readonly Dictionary<int, long> nextInPartition = [];
    private readonly Dictionary<int, PartitionIndex> partitions = [];
    private readonly TimeProvider clock = time ?? TimeProvider.System;
    private long nextSequence = 1;
    private readonly Arrivals arrivals = new(time ?? TimeProvider.System);

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

    /// <summary>The oldest sequence number still kept (<see cref="NextSequenceNumber"/> when none is): everything below it is past the retention.</summary>
    public long OldestSequenceNumber
    {
        get
        {
            lock (gate)
            {
                Trim();
                return head < messages.Count ? messages[head].SequenceNumber : nextSequence;
            }
        }
    }

    public long Count
    {
        get
        {
            lock (gate)
            {
                Trim();
                return messages.Count - head;
            }
        }
    }

    /// <summary>
    /// Numbers and keeps a message; <paramref name="persist"/> runs first, under the log's lock (so the store sees the
    /// messages in sequence order) and, when it throws, nothing is kept and no number is used.
    /// </summary>
    public TelemetryMessage Append(Func<long, TelemetryMessage> create, Action<TelemetryMessage>? persist = null)
    {
        TaskCompletionSource? signal;
        TelemetryMessage message;
        lock (gate)
        {
            message = create(nextSequence);
            var partition = partitionOf(message.DeviceId);
            message.PartitionSequenceNumber = nextInPartition.GetValueOrDefault(partition, 1);
            persist?.Invoke(message);
            nextSequence++;
            nextInPartition[partition] = message.PartitionSequenceNumber + 1;
            Keep(message);
            Trim();
            signal = arrivals.TakeWaiters();
        }

        signal?.TrySetResult();
        return message;
    }

    /// <summary>Restores persisted messages at start-up (those past the retention are left out).</summary>
    public void Restore(IEnumerable<TelemetryMessage> restored)
    {
        lock (gate)
        {
            foreach (var message in restored.OrderBy(m => m.SequenceNumber).Where(m => m.SequenceNumber >= nextSequence))
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

                Keep(message);
                nextSequence = Math.Max(nextSequence, message.SequenceNumber + 1);
            }

            Trim();
        }
    }

    // Under the gate: drops what is past the retention, oldest first.
    private void Trim()
    {
        var first = Math.Max(head, messages.Count - capacity);
        if (maxAge is { } age)
        {
            var limit = clock.GetUtcNow().UtcDateTime - age;
            while (first < messages.Count && messages[first].EnqueuedTimeUtc < limit)
            {
                first++;
            }
        }

        for (; head < first; head++)
        {
            var dropped = messages[head];
            partitions[partitionOf(dropped.DeviceId)].DropOldest();
            messages[head] = null!; // let the body go now
            if (!dropped.HandedOut)
            {
                bodies?.Return(dropped.Body); // no reader has it: a large body's array serves the next one
            }
        }

        if (head > 4096 && head * 2 > messages.Count)
        {
            messages.RemoveRange(0, head);
            head = 0;
        }
    }

    // Under the gate: a new newest message, in the hub-wide order and its partition's.
    private void Keep(TelemetryMessage message)
    {
        messages.Add(message);
        Partition(partitionOf(message.DeviceId)).Add(message);
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
            Trim();
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
            Trim();
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
            () =>
            {
                Trim();
                return HandOut(partitions.GetValueOrDefault(partition)?.From(fromPartitionSequence, max) ?? []);
            },
            wait, cancellationToken).ConfigureAwait(false);
    }

    // Under the gate: the index of the first kept message with a sequence number >= sequence (messages.Count when none).
    private int IndexOf(long sequence)
    {
        int low = head, high = messages.Count;
        while (low < high)
        {
            var middle = low + ((high - low) / 2);
            if (messages[middle].SequenceNumber < sequence)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
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
            () =>
            {
                Trim();
                var found = new List<TelemetryMessage>();
                for (var i = IndexOf(fromSequence); i < messages.Count && found.Count < max; i++)
                {
                    var m = messages[i];
                    if ((deviceId is null || m.DeviceId == deviceId) && (where is null || where(m)))
                    {
                        found.Add(m);
                    }
                }

                return HandOut(found);
            },
            wait, cancellationToken).ConfigureAwait(false);
    }

    // Under the gate: what a reader is given is its to keep (its bodies are never reused).
    private static List<TelemetryMessage> HandOut(List<TelemetryMessage> messages)
    {
        foreach (var message in messages)
        {
            message.HandedOut = true;
        }

        return messages;
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
