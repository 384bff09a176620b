using System.Text.Json.Nodes;

namespace IoTHubMqtt.Core.Mqtt;

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
