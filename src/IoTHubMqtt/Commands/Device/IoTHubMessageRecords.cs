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
}

/// <summary>A cloud-to-device message as Receive-IoTHubMessage returns it.</summary>
public sealed class IoTHubReceivedMessage
{
    internal IoTHubReceivedMessage(string deviceId, CloudToDeviceMessage message)
    {
        DeviceId = deviceId;
        MessageId = message.MessageId;
        CorrelationId = message.CorrelationId;
        UserId = message.UserId;
        ContentType = message.ContentType;
        ContentEncoding = message.ContentEncoding;
        To = message.To;
        ExpiryTime = message.ExpiryTime;
        CreationTime = message.CreationTime;
        ReceivedAt = message.ReceivedAt;
        BodyBytes = message.Body;
        Body = message.BodyText;
        Properties = PropertyTable.From(message.Properties, ignoreCase: false);
        SystemProperties = PropertyTable.From(message.SystemProperties, ignoreCase: false);
    }

    public string DeviceId { get; }

    public string? MessageId { get; }

    public string? CorrelationId { get; }

    public string? UserId { get; }

    public string? ContentType { get; }

    public string? ContentEncoding { get; }

    public string? To { get; }

    public DateTimeOffset? ExpiryTime { get; }

    public DateTimeOffset? CreationTime { get; }

    public DateTimeOffset ReceivedAt { get; }

    /// <summary>The body as UTF-8 text.</summary>
    public string Body { get; }

    public byte[] BodyBytes { get; }

    public int Size => BodyBytes.Length;

    /// <summary>The body parsed as JSON (objects become PSCustomObjects), or the text when it is not JSON.</summary>
    public object? BodyObject => PowerShellJson.ParseOrText(BodyBytes);

    public Hashtable Properties { get; }

    public Hashtable SystemProperties { get; }

    public override string ToString() => Body;
}
