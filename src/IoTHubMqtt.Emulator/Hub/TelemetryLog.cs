namespace IoTHubMqtt.Emulator.Hub;

/// <summary>Telemetry kept for the service to read, in arrival order with sequence numbers (an Event Hub partition in miniature).</summary>
internal sealed class TelemetryLog(int capacity)
{
    private readonly object gate = new();
    private readonly Queue<TelemetryMessage> messages = new();
    private long nextSequence = 1;
    private TaskCompletionSource? arrived; // created only while a reader waits

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
            messages.Enqueue(message);
            while (messages.Count > capacity)
            {
                messages.Dequeue();
            }

            signal = arrived;
            arrived = null;
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
                messages.Enqueue(message);
                nextSequence = Math.Max(nextSequence, message.SequenceNumber + 1);
            }
        }
    }

    /// <summary>Messages with sequence number ≥ <paramref name="fromSequence"/>, waiting up to <paramref name="wait"/> for the first one.</summary>
    public async Task<IReadOnlyList<TelemetryMessage>> ReadAsync(long fromSequence, int max, string? deviceId, TimeSpan wait, CancellationToken cancellationToken = default,
        Func<TelemetryMessage, bool>? where = null)
    {
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            Task signal;
            lock (gate)
            {
                var found = messages.Where(m => m.SequenceNumber >= fromSequence && (deviceId is null || m.DeviceId == deviceId) && (where is null || where(m))).Take(max).ToList();
                if (found.Count > 0)
                {
                    return found;
                }

                signal = (arrived ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                return [];
            }

            try
            {
                await signal.WaitAsync(left, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return [];
            }
        }
    }
}
