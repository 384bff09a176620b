using IoTHubMqtt.Emulator.Storage;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// One cloud-to-device queue per device: at most <see cref="MaxQueued"/> messages of up to <see cref="MaxMessageBytes"/>
/// each, kept until completed, expired or dead-lettered (after <see cref="IoTHubEmulatorOptions.CloudToDeviceMaxDeliveryCount"/>
/// deliveries), in memory and in the store alike. Each outcome goes to the <see cref="FeedbackLog"/>. Guarded by the
/// hub's lock, shared with the <see cref="DeviceRegistry"/> so that no message is queued for a device being deleted.
/// </summary>
internal sealed class CloudToDeviceQueues(object gate, IHubStore store, DeviceRegistry registry, FeedbackLog feedback, IoTHubEmulatorOptions options, EmulatorLog log)
{
    public const int MaxQueued = 50;
    public const int MaxMessageBytes = 64 * 1024;

    private readonly Dictionary<string, List<CloudToDeviceMessage>> queues = new(StringComparer.Ordinal);
    private long nextSequence = 1;

    /// <summary>Raised (outside the lock) when a device has a message to deliver.</summary>
    public event Action<string>? Available;

    private DateTime Now => options.TimeProvider.GetUtcNow().UtcDateTime;

    /// <summary>Takes the messages kept in the store (before the hub serves anyone).</summary>
    public void Load(IEnumerable<CloudToDeviceMessage> stored)
    {
        lock (gate)
        {
            foreach (var message in stored)
            {
                QueueOf(message.DeviceId).Add(message);
                nextSequence = Math.Max(nextSequence, message.SequenceNumber + 1);
            }
        }
    }

    /// <summary>Under the lock: forgets a deleted device's queue (the store drops its rows with the device).</summary>
    public void Forget(string deviceId) => queues.Remove(deviceId);

    public CloudToDeviceMessage Enqueue(string deviceId, byte[] body, IReadOnlyDictionary<string, string> properties,
        string? messageId, string? correlationId, string? userId, string? contentType, string? contentEncoding, string? ack, DateTime? expiryUtc)
    {
        if (body.Length > MaxMessageBytes)
        {
            throw HubError.MessageTooLarge(MaxMessageBytes);
        }

        CloudToDeviceMessage message;
        lock (gate)
        {
            if (!registry.Contains(deviceId) || deviceId.Contains('/', StringComparison.Ordinal))
            {
                throw HubError.DeviceNotFound(deviceId);
            }

            var queue = QueueOf(deviceId);
            DropExpired(queue);
            if (queue.Count >= MaxQueued)
            {
                throw HubError.QueueFull(deviceId);
            }

            var now = Now;
            message = new CloudToDeviceMessage
            {
                SequenceNumber = nextSequence++,
                DeviceId = deviceId,
                MessageId = string.IsNullOrEmpty(messageId) ? Guid.NewGuid().ToString() : messageId,
                Body = body,
                Properties = new Dictionary<string, string>(properties, StringComparer.Ordinal),
                CorrelationId = correlationId,
                UserId = userId,
                ContentType = contentType,
                ContentEncoding = contentEncoding,
                Ack = ack,
                EnqueuedTimeUtc = now,
                ExpiryTimeUtc = expiryUtc ?? now + options.CloudToDeviceDefaultTimeToLive,
                ExpirySetByService = expiryUtc is not null,
            };
            store.SaveCloudToDevice(message);
            queue.Add(message);
        }

        Available?.Invoke(deviceId);
        return message;
    }

    /// <summary>Locks and returns the messages ready to send to a device now (not locked, not expired).</summary>
    public List<CloudToDeviceMessage> TakeDeliverable(string deviceId)
    {
        var ready = new List<CloudToDeviceMessage>();
        lock (gate)
        {
            if (!queues.TryGetValue(deviceId, out var queue))
            {
                return ready;
            }

            DropExpired(queue);
            var now = Now;
            foreach (var message in queue)
            {
                if (message.LockedUntilUtc is { } until && until > now)
                {
                    continue;
                }

                if (message.DeliveryCount >= options.CloudToDeviceMaxDeliveryCount)
                {
                    continue;
                }

                message.DeliveryCount++;
                message.LockedUntilUtc = now + options.CloudToDeviceLockDuration;
                store.SaveCloudToDevice(message);
                ready.Add(message);
            }

            foreach (var dead in queue.Where(m => m.DeliveryCount >= options.CloudToDeviceMaxDeliveryCount && m.LockedUntilUtc < now).ToList())
            {
                log.Warning($"C2D message {dead.MessageId} for '{deviceId}' dead-lettered after {dead.DeliveryCount} deliveries.");
                queue.Remove(dead);
                store.DeleteCloudToDevice(dead.SequenceNumber);
                feedback.Add(dead, "DeliveryCountExceeded");
            }
        }

        return ready;
    }

    /// <summary>The device acknowledged (PUBACK) a message: it is done.</summary>
    public bool Complete(string deviceId, string messageId)
    {
        lock (gate)
        {
            if (!queues.TryGetValue(deviceId, out var queue))
            {
                return false;
            }

            var index = queue.FindIndex(m => m.MessageId == messageId && m.LockedUntilUtc is not null);
            if (index < 0)
            {
                return false;
            }

            store.DeleteCloudToDevice(queue[index].SequenceNumber);
            feedback.Add(queue[index], "Success");
            queue.RemoveAt(index);
            return true;
        }
    }

    /// <summary>The device went away: its locked messages become deliverable again (on its next connection).</summary>
    public void AbandonLocked(string deviceId)
    {
        lock (gate)
        {
            if (queues.TryGetValue(deviceId, out var queue))
            {
                foreach (var message in queue)
                {
                    message.LockedUntilUtc = null;
                }
            }
        }
    }

    public int QueuedCount(string deviceId)
    {
        lock (gate)
        {
            return queues.TryGetValue(deviceId, out var queue) ? queue.Count : 0;
        }
    }

    /// <summary>Devices whose locks ran out: their messages should be sent again.</summary>
    public List<string> DevicesWithExpiredLocks()
    {
        var now = Now;
        lock (gate)
        {
            return queues.Where(q => q.Value.Any(m => m.LockedUntilUtc is { } until && until <= now)).Select(q => q.Key).ToList();
        }
    }

    private List<CloudToDeviceMessage> QueueOf(string deviceId)
    {
        if (!queues.TryGetValue(deviceId, out var queue))
        {
            queues[deviceId] = queue = [];
        }

        return queue;
    }

    private void DropExpired(List<CloudToDeviceMessage> queue)
    {
        var now = Now;
        foreach (var expired in queue.Where(m => m.ExpiryTimeUtc <= now).ToList())
        {
            queue.Remove(expired);
            store.DeleteCloudToDevice(expired.SequenceNumber);
            feedback.Add(expired, "Expired");
        }
    }
}
