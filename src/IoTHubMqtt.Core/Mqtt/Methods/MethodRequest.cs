using System.Text;
using System.Text.Json.Nodes;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>A direct method call the device received. Answer it with <see cref="IoTHubDeviceClient.RespondToMethodAsync"/>.</summary>
public sealed class MethodRequest(string name, string requestId, byte[] payload, DateTimeOffset? receivedAt = null)
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

    public DateTimeOffset ReceivedAt { get; } = receivedAt ?? DateTimeOffset.UtcNow;

    public override string ToString() => $"Method {Name} ({RequestId})";
}
