namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// Telemetry kept for the service to read, in arrival order with sequence numbers: hub-wide ones (the log's position,
/// served as the Event Hubs offset) and, as Event Hubs numbers them, ones per partition (<paramref name="partitionOf"/>).
/// The retention is the newest <paramref name="capacity"/> messages, none older than <paramref name="maxAge"/> on the
/// hub's clock; the store on disk follows it (<see cref="OldestSequenceNumber"/> tells it what it may prune).
/// </summary>
internal sealed class TelemetryLog(int capacity, Func<string, int> partitionOf, TimeProvider? time = null, TimeSpan? maxAge = null)
{
    private readonly object gate = new();
    // In sequence order; the kept ones start at index 'head' (dropped ones are cleared and compacted away in bulk).
    private readonly List<TelemetryMessage> messages = [];
    private int head;
    private readonly Dictionary<int, long> nextInPartition = [];
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
            messages.Add(message);
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

                messages.Add(message);
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
            messages[head] = null!; // let the body go now
        }

        if (head > 4096 && head * 2 > messages.Count)
        {
            messages.RemoveRange(0, head);
            head = 0;
        }
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

                return found;
            },
            wait, cancellationToken).ConfigureAwait(false);
    }
}
