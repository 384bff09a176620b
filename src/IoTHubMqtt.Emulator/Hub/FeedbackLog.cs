using IoTHubMqtt.Emulator.Storage;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// Delivery feedback the sender of a C2D message asked for with <c>iothub-ack</c> (positive: Success; negative: Expired,
/// DeliveryCountExceeded). Kept, in memory and on disk alike, until a reader takes it (at most
/// <see cref="MaxWaiting"/>: beyond that the oldest are dropped). Guarded by the hub's lock.
/// </summary>
internal sealed class FeedbackLog(object gate, IHubStore store, TimeProvider time)
{
    /// <summary>Delivery feedback records kept until a reader takes them (the oldest are dropped beyond this).</summary>
    public const int MaxWaiting = 10_000;

    private readonly List<CloudToDeviceFeedback> waiting = [];
    private readonly Arrivals arrivals = new(time);
    private long nextSequence = 1;

    public int Count
    {
        get
        {
            lock (gate)
            {
                return waiting.Count;
            }
        }
    }

    /// <summary>Takes the records kept in the store (before the hub serves anyone): the newest <see cref="MaxWaiting"/>.</summary>
    public void Load(IEnumerable<CloudToDeviceFeedback> stored)
    {
        lock (gate)
        {
            foreach (var record in stored.OrderBy(r => r.SequenceNumber).TakeLast(MaxWaiting))
            {
                waiting.Add(record);
                nextSequence = Math.Max(nextSequence, record.SequenceNumber + 1);
            }
        }
    }

    /// <summary>Records an outcome of <paramref name="message"/> if its sender asked for that kind; wakes a waiting reader.</summary>
    public void Add(CloudToDeviceMessage message, string status)
    {
        var wanted = message.Ack switch
        {
            "full" => true,
            "positive" => status == "Success",
            "negative" => status != "Success",
            _ => false,
        };
        if (!wanted)
        {
            return;
        }

        TaskCompletionSource? signal;
        lock (gate)
        {
            var record = new CloudToDeviceFeedback(nextSequence++, message.MessageId, message.DeviceId, status, time.GetUtcNow().UtcDateTime);
            store.SaveFeedback(record);
            waiting.Add(record);
            if (waiting.Count > MaxWaiting)
            {
                store.DeleteFeedback(waiting[0].SequenceNumber);
                waiting.RemoveAt(0);
            }

            signal = arrivals.TakeWaiters();
        }

        signal?.TrySetResult();
    }

    /// <summary>
    /// Takes up to <paramref name="max"/> waiting records (oldest first), waiting up to <paramref name="wait"/> for one.
    /// Taken records are gone unless given back with <see cref="Return"/> (a reader that did not complete them).
    /// </summary>
    public async Task<List<CloudToDeviceFeedback>> TakeAsync(int max, TimeSpan wait, CancellationToken cancellationToken = default)
    {
        return await arrivals.WaitForAsync(gate, () =>
        {
            var taken = waiting.Take(max).ToList();
            waiting.RemoveRange(0, taken.Count);
            foreach (var record in taken)
            {
                store.DeleteFeedback(record.SequenceNumber);
            }

            return taken;
        }, wait, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Puts taken records back in order (a reader abandoned them or went away before completing them).</summary>
    public void Return(IReadOnlyCollection<CloudToDeviceFeedback> records)
    {
        if (records.Count == 0)
        {
            return;
        }

        TaskCompletionSource? signal;
        lock (gate)
        {
            foreach (var record in records)
            {
                store.SaveFeedback(record);
            }

            waiting.AddRange(records);
            waiting.Sort((a, b) => a.SequenceNumber.CompareTo(b.SequenceNumber));
            signal = arrivals.TakeWaiters();
        }

        signal?.TrySetResult();
    }
}

/// <summary>One delivery outcome of a C2D message, as the hub's feedback endpoint reports it.</summary>
internal sealed record CloudToDeviceFeedback(long SequenceNumber, string OriginalMessageId, string DeviceId, string StatusCode, DateTime EnqueuedTimeUtc);
