namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// Telemetry kept for the service to read, in arrival order with sequence numbers: hub-wide ones (the log's position,
/// served as the Event Hubs offset) and, as Event Hubs numbers them, ones per partition (<paramref name="partitionOf"/>).
/// </summary>
internal sealed class TelemetryLog(int capacity, Func<string, int> partitionOf, TimeProvider? time = null)
{
    private readonly object gate = new();
    private readonly Queue<TelemetryMessage> messages = new();
    private readonly Dictionary<int, long> nextInPartition = [];
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
            messages.Enqueue(message);
            while (messages.Count > capacity)
            {
                messages.Dequeue();
            }

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

                messages.Enqueue(message);
                nextSequence = Math.Max(nextSequence, message.SequenceNumber + 1);
            }
        }
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
