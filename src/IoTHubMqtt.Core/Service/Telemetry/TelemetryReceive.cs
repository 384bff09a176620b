using System.Globalization;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service;

/// <summary>
/// A telemetry read as a caller asks for it (Receive-IoTHubTelemetry's parameters): which messages, where to start,
/// where to keep checkpoints, how many and for how long. <see cref="ToReadOptions"/> checks what no parameter binder can.
/// </summary>
public sealed class TelemetryReceiveRequest
{
    /// <summary>Only messages of this device; null: every device.</summary>
    public string? DeviceId { get; init; }

    /// <summary>Stop after this many messages (fewer within <see cref="Timeout"/> is <c>TelemetryWaitTimedOut</c>); 0: read until <see cref="Timeout"/>.</summary>
    public int Count { get; init; }

    /// <summary>How long to read; null: until cancelled (or <see cref="Count"/>).</summary>
    public TimeSpan? Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Where a partition without a checkpoint starts: the oldest message the hub holds (default) or only new ones (<see cref="TelemetryStart.Latest"/>).</summary>
    public TelemetryStart Start { get; init; }

    /// <summary>Whether the caller named <see cref="Start"/> (it may not also pass <see cref="StartTime"/>).</summary>
    public bool StartGiven { get; init; }

    /// <summary>Where a partition without a checkpoint starts: at the messages enqueued at or after this time.</summary>
    public DateTimeOffset? StartTime { get; init; }

    public string? ConsumerGroup { get; init; }

    /// <summary>Only these partitions; null: every partition.</summary>
    public IReadOnlyList<string>? PartitionIds { get; init; }

    /// <summary>A checkpoint file path, the URL of a blob container (a SAS in its query), or with <see cref="StorageConnectionString"/> the container's name.</summary>
    public string? Checkpoint { get; init; }

    /// <summary>A storage account connection string (secret); <see cref="Checkpoint"/> is then the container's name.</summary>
    public string? StorageConnectionString { get; init; }

    /// <summary>How often readers sharing a checkpoint store renew and balance their partitions.</summary>
    public TimeSpan LoadBalancingInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Turns a checkpoint file path as the caller wrote it into a full path (a shell resolves it against its own location).</summary>
    public Func<string, string>? ResolvePath { get; init; }

    /// <summary>The reader's options; an invalid combination is an <see cref="IoTHubErrorKind.InvalidArgument"/> error.</summary>
    public TelemetryReadOptions ToReadOptions()
    {
        if (StartTime is not null && StartGiven)
        {
            throw Invalid(ErrorIds.TelemetryStartConflict, "Pass -StartPosition or -StartTime, not both.", "StartTime");
        }

        if (StorageConnectionString is not null && Checkpoint is null)
        {
            throw Invalid(ErrorIds.CheckpointContainerMissing, "-StorageConnectionString needs -Checkpoint with the container's name.", "Checkpoint");
        }

        if (LoadBalancingInterval <= TimeSpan.Zero)
        {
            throw Invalid(ErrorIds.LoadBalancingIntervalInvalid, "-LoadBalancingInterval must be longer than zero.", "LoadBalancingInterval");
        }

        return new TelemetryReadOptions
        {
            ConsumerGroup = ConsumerGroup,
            DeviceId = DeviceId,
            Start = StartTime is not null ? TelemetryStart.EnqueuedTime : Start,
            // At or after StartTime: Event Hubs starts after a time, in milliseconds.
            EnqueuedAfter = StartTime?.AddMilliseconds(-1),
            PartitionIds = PartitionIds,
            Checkpoint = Checkpoint is null ? null : TelemetryCheckpointLocation.Parse(Checkpoint, StorageConnectionString, ResolvePath),
            LoadBalancingInterval = LoadBalancingInterval,
            // As the Event Hubs processor: 30 s, or three intervals when they are longer, so that a busy reader keeps its partitions.
            OwnershipExpiration = LoadBalancingInterval * 3 > TimeSpan.FromSeconds(30) ? LoadBalancingInterval * 3 : TimeSpan.FromSeconds(30),
        };
    }

    private static IoTHubMqttException Invalid(string errorId, string message, string target) => new(errorId, message, null, target);
}

/// <summary>How a telemetry read ended.</summary>
public sealed record TelemetryReceiveResult(int Received, int Count, TimeSpan? Timeout)
{
    /// <summary><c>TelemetryWaitTimedOut</c> when fewer than the count asked for arrived in time; null otherwise.</summary>
    public IoTHubMqttException? Shortfall(string? deviceId) => Count > 0 && Received < Count
        ? new IoTHubMqttException(ErrorIds.TelemetryWaitTimedOut,
            $"{Received.ToString(CultureInfo.InvariantCulture)} of {Count.ToString(CultureInfo.InvariantCulture)} message(s) arrived within {(Timeout ?? TimeSpan.Zero).TotalSeconds.ToString(CultureInfo.InvariantCulture)} s.",
            "Wait longer with -Timeout, or check that the devices send.", deviceId)
        : null;
}

/// <summary>
/// Messages read, for the caller to hand on in order on its own thread (a pipeline's): <see cref="Write"/> records each
/// as delivered once it is handed on, so the checkpoint moves past it; one whose partition went to another reader
/// meanwhile is skipped (that reader delivers it).
/// </summary>
public sealed class TelemetryBatch
{
    private readonly TelemetryReader reader;

    internal TelemetryBatch(TelemetryReader reader, IReadOnlyList<TelemetryEvent> events, int receivedBefore)
    {
        this.reader = reader;
        Events = events;
        ReceivedBefore = receivedBefore;
    }

    public IReadOnlyList<TelemetryEvent> Events { get; }

    /// <summary>How many messages the read delivered before this batch.</summary>
    public int ReceivedBefore { get; }

    /// <summary>
    /// Hands each message to <paramref name="write"/>, in order; returns how many were handed on. An exception from
    /// <paramref name="write"/> leaves its message undelivered (the next read starts at it) and ends the batch.
    /// </summary>
    public int Write(Action<TelemetryEvent> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        var written = 0;
        foreach (var e in Events)
        {
            if (!reader.BeginDelivery(e))
            {
                continue;
            }

            var delivered = false;
            try
            {
                write(e);
                delivered = true;
            }
            finally
            {
                reader.EndDelivery(e, delivered);
            }

            written++;
        }

        return written;
    }
}
