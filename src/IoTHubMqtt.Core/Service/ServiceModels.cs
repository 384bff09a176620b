using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;

namespace IoTHubMqtt.Core.Service;

/// <summary>What to create or update in the registry. Keys left null are generated (create) or kept (update).</summary>
public sealed class DeviceSpec
{
    public required string DeviceId { get; init; }

    /// <summary>enabled (default) or disabled.</summary>
    public string? Status { get; init; }

    /// <summary>sas (default) or selfSigned.</summary>
    public string? AuthenticationType { get; init; }

    public string? PrimaryKey { get; init; }

    public string? SecondaryKey { get; init; }

    public string? PrimaryThumbprint { get; init; }

    public string? SecondaryThumbprint { get; init; }

    /// <summary>Tags for the device's twin, applied when it is created (and by an update that carries them).</summary>
    public JsonObject? Tags { get; init; }

    /// <summary>The device's ETag as last read: updates and removals with it happen only if the device has not changed since.</summary>
    public string? ETag { get; init; }

    internal JsonObject ToJson(string? etag)
    {
        var auth = new JsonObject { ["type"] = AuthenticationType ?? "sas" };
        if (AuthenticationType == "selfSigned")
        {
            auth["x509Thumbprint"] = new JsonObject { ["primaryThumbprint"] = PrimaryThumbprint, ["secondaryThumbprint"] = SecondaryThumbprint };
        }
        else
        {
            auth["symmetricKey"] = new JsonObject { ["primaryKey"] = PrimaryKey, ["secondaryKey"] = SecondaryKey };
        }

        var body = new JsonObject { ["deviceId"] = DeviceId, ["status"] = Status ?? "enabled", ["authentication"] = auth };
        if (etag is not null)
        {
            body["etag"] = etag;
        }

        return body;
    }
}

/// <summary>A device identity as the registry returns it. Keys are secret: <see cref="ToString"/> leaves them out.</summary>
public sealed class ServiceDevice
{
    public required string DeviceId { get; init; }

    public required string HostName { get; init; }

    public string? ETag { get; init; }

    public string? GenerationId { get; init; }

    public string Status { get; init; } = "enabled";

    public string? StatusReason { get; init; }

    public string ConnectionState { get; init; } = "Disconnected";

    public DateTimeOffset? LastActivityTime { get; init; }

    public string AuthenticationType { get; init; } = "sas";

    public string? PrimaryKey { get; init; }

    public string? SecondaryKey { get; init; }

    public string? PrimaryThumbprint { get; init; }

    public string? SecondaryThumbprint { get; init; }

    /// <summary>The twin's tags, when the answer carried them (import/export files; null otherwise).</summary>
    public JsonObject? Tags { get; init; }

    /// <summary>The twin's desired properties, when the answer carried them (export files; null otherwise).</summary>
    public JsonObject? DesiredProperties { get; init; }

    /// <summary>The twin's reported properties, when the answer carried them (export files; null otherwise).</summary>
    public JsonObject? ReportedProperties { get; init; }

    /// <summary>The identity with another ETag and tags (the twin's desired and reported properties are not carried over).</summary>
    internal ServiceDevice WithETagAndTags(string? etag, JsonObject? tags) => new()
    {
        DeviceId = DeviceId,
        HostName = HostName,
        ETag = etag,
        GenerationId = GenerationId,
        Status = Status,
        StatusReason = StatusReason,
        ConnectionState = ConnectionState,
        LastActivityTime = LastActivityTime,
        AuthenticationType = AuthenticationType,
        PrimaryKey = PrimaryKey,
        SecondaryKey = SecondaryKey,
        PrimaryThumbprint = PrimaryThumbprint,
        SecondaryThumbprint = SecondaryThumbprint,
        Tags = tags,
    };

    /// <summary>A device connection string with the primary key, or null (no key known, X.509 device). Secret.</summary>
    public string? ConnectionString => PrimaryKey is null ? null : IoTHubConnectionString.ForDevice(HostName, DeviceId, PrimaryKey).ToConnectionString();

    internal static ServiceDevice FromJson(JsonObject json, string hostName)
    {
        var auth = json["authentication"] as JsonObject;
        return new ServiceDevice
        {
            DeviceId = Text(json, "deviceId") ?? "",
            HostName = hostName,
            ETag = Text(json, "etag")?.Trim('"'),
            GenerationId = Text(json, "generationId"),
            Status = Text(json, "status") ?? "enabled",
            StatusReason = Text(json, "statusReason"),
            ConnectionState = Text(json, "connectionState") ?? "Disconnected",
            LastActivityTime = Time(Text(json, "lastActivityTime")),
            AuthenticationType = Text(auth, "type") ?? "sas",
            PrimaryKey = Text(auth?["symmetricKey"] as JsonObject, "primaryKey"),
            SecondaryKey = Text(auth?["symmetricKey"] as JsonObject, "secondaryKey"),
            PrimaryThumbprint = Text(auth?["x509Thumbprint"] as JsonObject, "primaryThumbprint"),
            SecondaryThumbprint = Text(auth?["x509Thumbprint"] as JsonObject, "secondaryThumbprint"),
        };
    }

    internal static string? Text(JsonObject? json, string name) =>
        json?[name] is JsonValue value && value.TryGetValue<string>(out var text) && text.Length > 0 ? text : null;

    internal static DateTimeOffset? Time(string? text) =>
        DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var time) && time.Year > 1
            ? time
            : null;

    public override string ToString() => $"{DeviceId}@{HostName} ({Status})";
}

/// <summary>One page of <c>SELECT * FROM devices</c>: twins (no keys) and the continuation token for the next page.</summary>
public sealed record DeviceQueryPage(IReadOnlyList<ServiceDevice> Devices, string? Continuation);

/// <summary>What a device answered to a direct method.</summary>
public sealed record MethodInvocationResult(string DeviceId, string MethodName, int Status, JsonNode? Payload);

/// <summary>A device twin as the service sees it.</summary>
public sealed record ServiceTwin(string DeviceId, string? ETag, long DesiredVersion, long ReportedVersion, JsonObject Desired, JsonObject Reported, JsonObject? Tags);

/// <summary>A cloud-to-device message to send.</summary>
public sealed class CloudMessage
{
    public required byte[] Body { get; init; }

    public string? MessageId { get; init; }

    public string? CorrelationId { get; init; }

    public string? ContentType { get; init; }

    public string? ContentEncoding { get; init; }

    /// <summary>none, positive, negative or full: which delivery outcomes the hub reports on its feedback endpoint.</summary>
    public string? Ack { get; init; }

    public DateTimeOffset? Expiry { get; init; }

    public IReadOnlyDictionary<string, string> Properties { get; init; } = new Dictionary<string, string>();
}

/// <summary>A C2D message the hub accepted.</summary>
public sealed record CloudMessageReceipt(string DeviceId, string MessageId);

/// <summary>One delivery outcome of a C2D message: Success, Expired, DeliveryCountExceeded, Rejected or Purged.</summary>
public sealed record CloudMessageFeedback(string OriginalMessageId, string DeviceId, string StatusCode, string? Description, DateTimeOffset EnqueuedTime);
