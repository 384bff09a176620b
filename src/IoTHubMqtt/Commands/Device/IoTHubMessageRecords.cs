using System.Collections;
using System.Collections.Specialized;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>A telemetry message Send-IoTHubMessage sent and the hub acknowledged (-PassThru).</summary>
public sealed class IoTHubSentMessage
{
    public required string DeviceId { get; init; }

    public string? MessageId { get; init; }

    public string? CorrelationId { get; init; }

    public string? ContentType { get; init; }

    public string? ContentEncoding { get; init; }

    public required int Size { get; init; }

    public required OrderedDictionary Properties { get; init; }

    /// <summary>The body as text when it is text, otherwise its bytes.</summary>
    public object? Body { get; init; }

    public DateTimeOffset? AcknowledgedAt { get; init; }

    public int Attempts { get; init; }

    public override string ToString() => $"{DeviceId} {MessageId ?? "(no id)"} {Size} bytes";

    /// <summary>The record of a message the hub acknowledged; <paramref name="body"/> as the caller shows it.</summary>
    internal static IoTHubSentMessage From(string deviceId, TelemetryMessage message, object? body, TelemetrySendResult result)
    {
        var properties = new OrderedDictionary(StringComparer.Ordinal);
        foreach (var (name, value) in message.Properties)
        {
            properties[name] = value;
        }

        return new IoTHubSentMessage
        {
            DeviceId = deviceId,
            MessageId = message.MessageId,
            CorrelationId = message.CorrelationId,
            ContentType = message.ContentType,
            ContentEncoding = message.ContentEncoding,
            Size = message.Payload.Length,
            Properties = properties,
            Body = body,
            AcknowledgedAt = message.QualityOfService == TelemetryQualityOfService.AtMostOnce ? null : result.AcknowledgedAt,
            Attempts = result.Attempts,
        };
    }
}

/// <summary>
/// A cloud-to-device message as Receive-IoTHubMessage returns it: the core's message (its system properties read from
/// the MQTT property bag there, once) with the device it came to and PowerShell views of its body and properties.
/// </summary>
public sealed class IoTHubReceivedMessage
{
    private readonly CloudToDeviceMessage message;

    internal IoTHubReceivedMessage(string deviceId, CloudToDeviceMessage message)
    {
        this.message = message;
        DeviceId = deviceId;
        Body = message.BodyText;
        Properties = PropertyTable.From(message.Properties, ignoreCase: false);
        SystemProperties = PropertyTable.From(message.SystemProperties, ignoreCase: false);
    }

    public string DeviceId { get; }

    public string? MessageId => message.MessageId;

    public string? CorrelationId => message.CorrelationId;

    public string? UserId => message.UserId;

    public string? ContentType => message.ContentType;

    public string? ContentEncoding => message.ContentEncoding;

    public string? To => message.To;

    public DateTimeOffset? ExpiryTime => message.ExpiryTime;

    public DateTimeOffset? CreationTime => message.CreationTime;

    public DateTimeOffset ReceivedAt => message.ReceivedAt;

    /// <summary>The body as UTF-8 text.</summary>
    public string Body { get; }

    public byte[] BodyBytes => message.Body;

    public int Size => BodyBytes.Length;

    /// <summary>The body parsed as JSON (objects become PSCustomObjects), or the text when it is not JSON.</summary>
    public object? BodyObject => PowerShellJson.ParseOrText(BodyBytes);

    public Hashtable Properties { get; }

    public Hashtable SystemProperties { get; }

    public override string ToString() => Body;
}
