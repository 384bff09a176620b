namespace IoTHubMqtt.Emulator.Hub;

/// <summary>A cloud-to-device message waiting in a device's queue.</summary>
internal sealed class CloudToDeviceMessage
{
    public required long SequenceNumber { get; init; }

    public required string DeviceId { get; init; }

    public required string MessageId { get; init; }

    public required byte[] Body { get; init; }

    public IReadOnlyDictionary<string, string> Properties { get; init; } = new Dictionary<string, string>();

    public string? CorrelationId { get; init; }

    public string? UserId { get; init; }

    public string? ContentType { get; init; }

    public string? ContentEncoding { get; init; }

    public string? Ack { get; init; }

    public DateTime EnqueuedTimeUtc { get; init; }

    public DateTime ExpiryTimeUtc { get; init; }

    /// <summary>True when the service set the expiry (the device then sees it as <c>$.exp</c>); false for the hub's default time to live.</summary>
    public bool ExpirySetByService { get; init; }

    public int DeliveryCount { get; set; }

    /// <summary>When set, the message was sent and waits for its PUBACK until then.</summary>
    public DateTime? LockedUntilUtc { get; set; }
}

/// <summary>A telemetry (device-to-cloud) message as the service reads it.</summary>
public sealed class TelemetryMessage
{
    /// <summary>The hub-wide sequence number (the position in the emulator's log; the Event Hubs offset).</summary>
    public required long SequenceNumber { get; init; }

    /// <summary>The sequence number within the message's partition, as Event Hubs numbers them (from 1).</summary>
    public long PartitionSequenceNumber { get; internal set; }

    public required string DeviceId { get; init; }

    public string? ModuleId { get; init; }

    public required DateTime EnqueuedTimeUtc { get; init; }

    public required byte[] Body { get; init; }

    /// <summary>Application properties from the topic's property bag (plus <c>mqtt-retain</c> when the retain flag was set).</summary>
    public required IReadOnlyDictionary<string, string> Properties { get; init; }

    /// <summary>System properties by their AMQP-style names: <c>message-id</c>, <c>correlation-id</c>, <c>user-id</c>, <c>content-type</c>, <c>content-encoding</c>, <c>to</c>, <c>absolute-expiry-time</c>, <c>iothub-creation-time-utc</c>.</summary>
    public required IReadOnlyDictionary<string, string> SystemProperties { get; init; }

    /// <summary>Whether a reader has been handed the message (then its body is never reused); set under the log's lock.</summary>
    internal bool HandedOut { get; set; }

    public override string ToString() => $"Telemetry #{SequenceNumber} from {DeviceId} ({Body.Length} bytes)";
}
