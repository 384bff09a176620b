using System.Globalization;
using System.Text;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>A device-to-cloud message: body bytes, application properties and the system properties IoT Hub knows.</summary>
public sealed class TelemetryMessage
{
    private byte[]? bodyArray;

    public TelemetryMessage(byte[] body)
    {
        bodyArray = body ?? throw new ArgumentNullException(nameof(body));
        Payload = body;
    }

    /// <summary>
    /// A message over part of a buffer, which may be pooled: the sender reads it until the message is acknowledged
    /// or given up, so the buffer must not change or be reused before then.
    /// </summary>
    public TelemetryMessage(ReadOnlyMemory<byte> payload) => Payload = payload;

    public static TelemetryMessage FromText(string text, string? contentType = "text/plain", string? contentEncoding = "utf-8") =>
        new(Encoding.UTF8.GetBytes(text)) { ContentType = contentType, ContentEncoding = contentEncoding };

    /// <summary>The body as sent.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>The body as an array (a copy when the message was made over part of a buffer).</summary>
    public byte[] Body => bodyArray ??= Payload.ToArray();

    public string? MessageId { get; set; }

    public string? CorrelationId { get; set; }

    public string? UserId { get; set; }

    public string? ContentType { get; set; }

    public string? ContentEncoding { get; set; }

    public DateTimeOffset? CreationTime { get; set; }

    public DateTimeOffset? ExpiryTime { get; set; }

    /// <summary>At least once (the default: the hub acknowledges it and it is sent again until it does) or at most once.</summary>
    public TelemetryQualityOfService QualityOfService { get; set; } = TelemetryQualityOfService.AtLeastOnce;

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

/// <summary>The MQTT quality of service of a telemetry message; IoT Hub does not support QoS 2.</summary>
public enum TelemetryQualityOfService
{
    /// <summary>QoS 0: written once, not acknowledged.</summary>
    AtMostOnce = 0,

    /// <summary>QoS 1: acknowledged by the hub (PUBACK); sent again after a lost connection until it is.</summary>
    AtLeastOnce = 1,
}
