using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>A device-to-cloud message: body bytes, application properties and the system properties IoT Hub knows.</summary>
public sealed class TelemetryMessage
{
    public TelemetryMessage(byte[] body) => Body = body ?? throw new ArgumentNullException(nameof(body));

    public static TelemetryMessage FromText(string text, string? contentType = "text/plain", string? contentEncoding = "utf-8") =>
        new(Encoding.UTF8.GetBytes(text)) { ContentType = contentType, ContentEncoding = contentEncoding };

    public byte[] Body { get; }

    public string? MessageId { get; set; }

    public string? CorrelationId { get; set; }

    public string? UserId { get; set; }

    public string? ContentType { get; set; }

    public string? ContentEncoding { get; set; }

    public DateTimeOffset? CreationTime { get; set; }

    public DateTimeOffset? ExpiryTime { get; set; }

    /// <summary>Application properties, in the order given.</summary>
    public IList<KeyValuePair<string, string?>> Properties { get; } = new List<KeyValuePair<string, string?>>();

    /// <summary>The property bag: system properties first, then application properties.</summary>
    public IEnumerable<KeyValuePair<string, string?>> PropertyBagEntries()
    {
        static KeyValuePair<string, string?> P(string name, string value) => new(name, value);
        if (MessageId is not null)
        {
            yield return P(PropertyBag.MessageId, MessageId);
        }

        if (CorrelationId is not null)
        {
            yield return P(PropertyBag.CorrelationId, CorrelationId);
        }

        if (UserId is not null)
        {
            yield return P(PropertyBag.UserId, UserId);
        }

        if (ContentType is not null)
        {
            yield return P(PropertyBag.ContentType, ContentType);
        }

        if (ContentEncoding is not null)
        {
            yield return P(PropertyBag.ContentEncoding, ContentEncoding);
        }

        if (CreationTime is { } created)
        {
            yield return P(PropertyBag.CreationTime, created.UtcDateTime.ToString("o", CultureInfo.InvariantCulture));
        }

        if (ExpiryTime is { } expires)
        {
            yield return P(PropertyBag.ExpiryTime, expires.UtcDateTime.ToString("o", CultureInfo.InvariantCulture));
        }

        foreach (var property in Properties)
        {
            if (property.Key.StartsWith("$.", StringComparison.Ordinal) || property.Key.StartsWith("iothub-", StringComparison.OrdinalIgnoreCase))
            {
                throw new ArgumentException($"'{property.Key}' is a reserved property name; use the message's own fields for system properties.");
            }

            yield return property;
        }
    }
}

/// <summary>The outcome of one telemetry publish: acknowledged by the hub (PUBACK) or not.</summary>
public sealed record TelemetrySendResult(string? MessageId, int BodyLength, DateTimeOffset AcknowledgedAt, int Attempts);

/// <summary>A cloud-to-device message as the device receives it. Complete it (PUBACK) once it is handled.</summary>
public sealed class CloudToDeviceMessage
{
    private readonly Func<CancellationToken, Task>? complete;
    private int completed;

    public CloudToDeviceMessage(string topic, byte[] body, IReadOnlyDictionary<string, string?> properties, Func<CancellationToken, Task>? complete)
    {
        Topic = topic;
        Body = body;
        this.complete = complete;
        var application = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (name, value) in properties)
        {
            switch (name)
            {
                case PropertyBag.MessageId: MessageId = value; break;
                case PropertyBag.CorrelationId: CorrelationId = value; break;
                case PropertyBag.UserId: UserId = value; break;
                case PropertyBag.ContentType: ContentType = value; break;
                case PropertyBag.ContentEncoding: ContentEncoding = value; break;
                case PropertyBag.To: To = value; break;
                case PropertyBag.ExpiryTime: ExpiryTime = ParseTime(value); break;
                case PropertyBag.CreationTime: CreationTime = ParseTime(value); break;
                default:
                    if (name.StartsWith("$.", StringComparison.Ordinal) || name.StartsWith("iothub-", StringComparison.Ordinal))
                    {
                        SystemProperties[name] = value;
                    }
                    else
                    {
                        application[name] = value;
                    }

                    break;
            }
        }

        Properties = application;
    }

    public string Topic { get; }

    public byte[] Body { get; }

    /// <summary>The body as UTF-8 text.</summary>
    public string BodyText => Encoding.UTF8.GetString(Body);

    public string? MessageId { get; }

    public string? CorrelationId { get; }

    public string? UserId { get; }

    public string? ContentType { get; }

    public string? ContentEncoding { get; }

    public string? To { get; }

    public DateTimeOffset? ExpiryTime { get; }

    public DateTimeOffset? CreationTime { get; }

    public IReadOnlyDictionary<string, string?> Properties { get; }

    /// <summary>Other system properties the hub added (names starting with <c>$.</c> or <c>iothub-</c>).</summary>
    public Dictionary<string, string?> SystemProperties { get; } = new(StringComparer.Ordinal);

    public DateTimeOffset ReceivedAt { get; init; } = DateTimeOffset.UtcNow;

    public bool IsCompleted => Volatile.Read(ref completed) != 0;

    /// <summary>Acknowledges the message (PUBACK); the hub then removes it from the device's queue. Idempotent.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref completed, 1) == 0 && complete is not null)
        {
            await complete(cancellationToken).ConfigureAwait(false);
        }
    }

    public override string ToString() => $"C2D {MessageId ?? "(no id)"} {Body.Length} bytes";

    private static DateTimeOffset? ParseTime(string? value) =>
        DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time) ? time : null;
}

/// <summary>A direct method call the device received. Answer it with <see cref="IoTHubDeviceClient.RespondToMethodAsync"/>.</summary>
public sealed class MethodRequest(string name, string requestId, byte[] payload)
{
    public string Name { get; } = name;

    public string RequestId { get; } = requestId;

    public byte[] Payload { get; } = payload;

    public string PayloadText => Encoding.UTF8.GetString(Payload);

    /// <summary>The payload parsed as JSON, or null when it is empty or not JSON.</summary>
    public JsonNode? PayloadJson
    {
        get
        {
            try
            {
                return Payload.Length == 0 ? null : JsonNode.Parse(Payload);
            }
            catch (System.Text.Json.JsonException)
            {
                return null;
            }
        }
    }

    public DateTimeOffset ReceivedAt { get; } = DateTimeOffset.UtcNow;

    public override string ToString() => $"Method {Name} ({RequestId})";
}

/// <summary>The device twin as the device sees it: desired and reported sections with their versions.</summary>
public sealed class DeviceTwin(JsonObject desired, JsonObject reported)
{
    public JsonObject Desired { get; } = desired;

    public JsonObject Reported { get; } = reported;

    public long DesiredVersion => Desired["$version"]?.GetValue<long>() ?? 0;

    public long ReportedVersion => Reported["$version"]?.GetValue<long>() ?? 0;

    public static DeviceTwin Parse(ReadOnlySpan<byte> json)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw new FormatException("The twin is not a JSON object.");
        return new DeviceTwin(
            root["desired"]?.DeepClone() as JsonObject ?? [],
            root["reported"]?.DeepClone() as JsonObject ?? []);
    }

    public override string ToString() => $"Twin desired v{DesiredVersion}, reported v{ReportedVersion}";
}

/// <summary>A desired-properties patch pushed by the service.</summary>
public sealed class DesiredPropertiesUpdate(JsonObject patch, long version)
{
    public JsonObject Patch { get; } = patch;

    public long Version { get; } = version;

    public DateTimeOffset ReceivedAt { get; } = DateTimeOffset.UtcNow;

    public override string ToString() => $"Desired v{Version}";
}
