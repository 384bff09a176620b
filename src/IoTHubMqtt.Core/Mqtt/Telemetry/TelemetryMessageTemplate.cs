using System.Globalization;
using System.Text;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// What the messages of one send share (content type and encoding, ids, creation time, quality of service, application
/// properties), made into a telemetry message one body at a time. The properties are turned into text and checked once;
/// a bad one (an empty or reserved name) fails each message, so every message reports it. A large text body is encoded
/// into a pooled buffer (<see cref="PayloadBuffers"/>) that the caller gives back once the message is finished.
/// </summary>
public sealed class TelemetryMessageTemplate
{
    private readonly KeyValuePair<string, string?>[] properties;
    private readonly string? propertyError;

    /// <param name="properties">Application properties; values are sent as text (times in ISO 8601 UTC, numbers invariant).</param>
    public TelemetryMessageTemplate(IEnumerable<KeyValuePair<string, object?>>? properties = null)
    {
        this.properties = (properties ?? []).Select(p => new KeyValuePair<string, string?>(p.Key, Text(p.Value))).ToArray();
        if (this.properties.Any(p => string.IsNullOrEmpty(p.Key)))
        {
            propertyError = ErrorIds.PropertyNameEmpty;
            return;
        }

        try
        {
            // Reserved names are refused here, so a bad property fails its message and not a publish.
            var probe = new TelemetryMessage([]);
            Append(probe);
            _ = probe.PropertyBagEntries().Count();
        }
        catch (ArgumentException ex)
        {
            propertyError = ex.Message;
        }
    }

    public string? ContentType { get; init; }

    public string? ContentEncoding { get; init; }

    public string? MessageId { get; init; }

    public string? CorrelationId { get; init; }

    public DateTimeOffset? CreationTime { get; init; }

    public TelemetryQualityOfService QualityOfService { get; init; } = TelemetryQualityOfService.AtLeastOnce;

    /// <summary>
    /// A message for a body: a string as UTF-8 text, bytes as they are, anything else as the JSON <paramref name="toJson"/>
    /// writes; <paramref name="shown"/> is the body as the sender reports it (the text, the bytes, the JSON) and
    /// <paramref name="buffer"/> the pooled buffer of the encoded text, or null.
    /// </summary>
    public TelemetryMessage From(object? body, Func<object, string> toJson, out object? shown, out byte[]? buffer)
    {
        ArgumentNullException.ThrowIfNull(toJson);
        switch (body)
        {
            case null:
                throw new IoTHubMqttException(ErrorIds.MessageBodyNull, "The message body is null.", "Pipe or pass a string, bytes or an object.");
            case string text:
                shown = text;
                return FromText(text, out buffer);
            case byte[] bytes:
                shown = bytes;
                buffer = null;
                return FromBytes(bytes);
            default:
                var json = toJson(body);
                shown = json;
                return FromJson(json, out buffer);
        }
    }

    /// <summary>A text body as UTF-8 (text/plain unless the template says otherwise); <paramref name="buffer"/> is pooled or null.</summary>
    public TelemetryMessage FromText(string text, out byte[]? buffer) => Complete(Encode(text, out buffer), "text/plain", ContentEncoding ?? "utf-8");

    /// <summary>A JSON document as UTF-8 (application/json unless the template says otherwise); <paramref name="buffer"/> is pooled or null.</summary>
    public TelemetryMessage FromJson(string json, out byte[]? buffer) => Complete(Encode(json, out buffer), "application/json", ContentEncoding ?? "utf-8");

    /// <summary>A binary body, sent as it is (application/octet-stream unless the template says otherwise).</summary>
    public TelemetryMessage FromBytes(byte[] bytes) => Complete(new TelemetryMessage(bytes), "application/octet-stream", ContentEncoding);

    private TelemetryMessage Encode(string text, out byte[]? buffer)
    {
        ThrowIfPropertiesInvalid();
        if (text.Length >= PayloadBuffers.PooledFrom)
        {
            // One pass for most text: a pooled buffer has room for at least one byte a character (all of ASCII), so
            // the UTF-8 length is counted first only when the text does not fit.
            buffer = PayloadBuffers.Rent(text.Length);
            if (Encoding.UTF8.TryGetBytes(text, buffer, out var written))
            {
                return new TelemetryMessage(buffer.AsMemory(0, written));
            }

            PayloadBuffers.Return(buffer);
        }

        var length = Encoding.UTF8.GetByteCount(text);
        if (length < PayloadBuffers.PooledFrom)
        {
            buffer = null;
            return new TelemetryMessage(Encoding.UTF8.GetBytes(text));
        }

        buffer = PayloadBuffers.Rent(length);
        return new TelemetryMessage(buffer.AsMemory(0, Encoding.UTF8.GetBytes(text, buffer)));
    }

    private TelemetryMessage Complete(TelemetryMessage message, string contentType, string? contentEncoding)
    {
        ThrowIfPropertiesInvalid();
        message.ContentType = ContentType ?? contentType;
        message.ContentEncoding = contentEncoding;
        message.MessageId = MessageId;
        message.CorrelationId = CorrelationId;
        message.CreationTime = CreationTime;
        message.QualityOfService = QualityOfService;
        Append(message);
        return message;
    }

    private void Append(TelemetryMessage message)
    {
        foreach (var property in properties)
        {
            message.Properties.Add(property);
        }
    }

    private void ThrowIfPropertiesInvalid()
    {
        if (propertyError == ErrorIds.PropertyNameEmpty)
        {
            throw new IoTHubMqttException(ErrorIds.PropertyNameEmpty, "A property name is empty.", null, "Property");
        }

        if (propertyError is not null)
        {
            throw new ArgumentException(propertyError);
        }
    }

    private static string? Text(object? value) => value switch
    {
        null => null,
        DateTime time => time.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture),
        DateTimeOffset time => time.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture),
        bool flag => flag ? "true" : "false",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString(),
    };
}
