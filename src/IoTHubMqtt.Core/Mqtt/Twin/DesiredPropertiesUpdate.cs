using System.Text.Json.Nodes;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>A desired-properties patch pushed by the service.</summary>
public sealed class DesiredPropertiesUpdate(JsonObject patch, long version, DateTimeOffset? receivedAt = null)
{
    public JsonObject Patch { get; } = patch;

    public long Version { get; } = version;

    public DateTimeOffset ReceivedAt { get; } = receivedAt ?? DateTimeOffset.UtcNow;

    public override string ToString() => $"Desired v{Version}";
}
