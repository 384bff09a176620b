using System.Globalization;
using Azure.Messaging.EventHubs;

namespace IoTHubMqtt.Core.Service;

/// <summary>A device-to-cloud message read from the hub's Event Hub-compatible endpoint.</summary>
public sealed record TelemetryEvent(long SequenceNumber, string DeviceId, DateTimeOffset EnqueuedTime, byte[] Body,
    IReadOnlyDictionary<string, string> Properties, IReadOnlyDictionary<string, string> SystemProperties)
{
    /// <summary>The partition the message was read from.</summary>
    public string? PartitionId { get; init; }

    /// <summary>The event's offset in its partition (the Event Hubs position a checkpoint records).</summary>
    public string? Offset { get; init; }

    /// <summary>The reader's receipt for <see cref="TelemetryReader.Acknowledge"/>.</summary>
    internal object? Receipt { get; init; }

    /// <summary>
    /// An event as the Event Hubs client gives it: the AMQP properties under their AMQP names (message-id, correlation-id,
    /// user-id, content-type, content-encoding, to, absolute-expiry-time) and the annotations (x-opt-*, iothub-*) as
    /// system properties, every value as text (times in round-trip format).
    /// </summary>
    internal static TelemetryEvent From(EventData data, string partition)
    {
        var system = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string name, object? value)
        {
            if (value is not null)
            {
                system[name] = Text(value);
            }
        }

        var raw = data.GetRawAmqpMessage();
        var p = raw.Properties;
        Add("message-id", p.MessageId?.ToString());
        Add("correlation-id", p.CorrelationId?.ToString());
        Add("user-id", p.UserId is { Length: > 0 } user ? System.Text.Encoding.UTF8.GetString(user.Span) : null);
        Add("content-type", p.ContentType);
        Add("content-encoding", p.ContentEncoding);
        Add("to", p.To?.ToString());
        Add("absolute-expiry-time", p.AbsoluteExpiryTime);
        foreach (var (name, value) in raw.MessageAnnotations)
        {
            Add(name, value);
        }

        var properties = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in data.Properties)
        {
            properties[name] = value is null ? "" : Text(value);
        }

        var deviceId = system.GetValueOrDefault("iothub-connection-device-id") ?? properties.GetValueOrDefault("iothub-connection-device-id") ?? "";
        return new TelemetryEvent(data.SequenceNumber, deviceId, data.EnqueuedTime, data.EventBody.ToArray(), properties, system)
        {
            PartitionId = partition,
            Offset = data.OffsetString,
        };
    }

    private static string Text(object value) => value switch
    {
        DateTime time => time.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
        DateTimeOffset time => time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
        byte[] bytes => System.Text.Encoding.UTF8.GetString(bytes),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}

/// <summary>Where and how a telemetry reader reads.</summary>
public sealed class TelemetryReadOptions
{
    /// <summary>The consumer group; <c>$Default</c> when null.</summary>
    public string? ConsumerGroup { get; init; }

    /// <summary>Where a partition without a checkpoint starts: <see cref="TelemetryStart.Earliest"/> (default), <see cref="TelemetryStart.Latest"/> or <see cref="EnqueuedAfter"/>.</summary>
    public TelemetryStart Start { get; init; }

    /// <summary>Unless <see cref="Start"/> is <see cref="TelemetryStart.Latest"/>: messages the hub enqueued after this time (milliseconds, as Event Hubs compares).</summary>
    public DateTimeOffset? EnqueuedAfter { get; init; }

    /// <summary>Only messages of this device (filtered by the reader: the endpoint has no such filter). Null: every device.</summary>
    public string? DeviceId { get; init; }

    /// <summary>Only these partitions (several readers can split the partitions between them). Null: every partition.</summary>
    public IReadOnlyList<string>? PartitionIds { get; init; }

    /// <summary>
    /// Where the reader keeps its position and partition ownership so that it resumes where it stopped and shares the
    /// partitions with other readers of the consumer group; null: in memory for this reader only.
    /// </summary>
    public TelemetryCheckpointLocation? Checkpoint { get; init; }

    /// <summary>How often the reader renews its partition ownership and balances partitions with other readers (Event Hubs processor default 10 s).</summary>
    public TimeSpan LoadBalancingInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a reader that stopped renewing keeps its partitions (Event Hubs processor default 30 s).</summary>
    public TimeSpan OwnershipExpiration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The reader's name in the ownership records; a new one each time when null.</summary>
    public string? ReaderId { get; init; }
}

/// <summary>Where a partition without a checkpoint starts.</summary>
public enum TelemetryStart
{
    /// <summary>The oldest message the hub still holds.</summary>
    Earliest,

    /// <summary>Only messages enqueued after the reader started.</summary>
    Latest,

    /// <summary>Messages enqueued after <see cref="TelemetryReadOptions.EnqueuedAfter"/>.</summary>
    EnqueuedTime,
}

/// <summary>
/// Where telemetry checkpoints and partition ownership are kept: a JSON file (readers on one machine), or an Azure
/// Storage blob container laid out as the Event Hubs blob checkpoint stores lay it out (readers anywhere; the .NET and
/// JavaScript processors read the same checkpoints).
/// </summary>
public sealed class TelemetryCheckpointLocation
{
    private TelemetryCheckpointLocation(string? filePath, Uri? containerUri, string? storageConnectionString, string? containerName)
    {
        FilePath = filePath;
        ContainerUri = containerUri;
        StorageConnectionString = storageConnectionString;
        ContainerName = containerName;
    }

    public string? FilePath { get; }

    /// <summary>The container's URL, with a SAS in its query when the container is not public. Secret when it has one.</summary>
    public Uri? ContainerUri { get; }

    /// <summary>A storage account connection string (secret); with <see cref="ContainerName"/>.</summary>
    public string? StorageConnectionString { get; }

    public string? ContainerName { get; }

    public bool IsBlob => FilePath is null;

    public static TelemetryCheckpointLocation File(string path) => new(Path.GetFullPath(path), null, null, null);

    public static TelemetryCheckpointLocation Container(Uri containerUri) => new(null, containerUri, null, null);

    public static TelemetryCheckpointLocation Container(string storageConnectionString, string containerName) => new(null, null, storageConnectionString, containerName);

    /// <summary>
    /// Where <paramref name="checkpoint"/> points: with a storage connection string, the container of that name; an
    /// http(s) URL, a blob container; anything else, a file (made a full path by <paramref name="resolvePath"/>).
    /// </summary>
    public static TelemetryCheckpointLocation Parse(string checkpoint, string? storageConnectionString, Func<string, string>? resolvePath = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkpoint);
        return storageConnectionString is not null ? Container(storageConnectionString, checkpoint)
            : Uri.TryCreate(checkpoint, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http" ? Container(uri)
            : File(resolvePath?.Invoke(checkpoint) ?? checkpoint);
    }

    /// <summary>The file, or the container without its SAS.</summary>
    public override string ToString() => FilePath ?? (ContainerUri is { } uri ? uri.GetLeftPart(UriPartial.Path) : $"container {ContainerName}");
}
