using System.Globalization;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// The device-side MQTT topics of IoT Hub, built and parsed in one place.
/// See https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub
/// </summary>
public sealed class DeviceTopics
{
    public const string ApiVersion = "2021-04-12";
    public const string MethodsSubscription = "$iothub/methods/POST/#";
    public const string TwinResponseSubscription = "$iothub/twin/res/#";
    public const string DesiredPropertiesSubscription = "$iothub/twin/PATCH/properties/desired/#";
    private const string MethodRequestPrefix = "$iothub/methods/POST/";
    private const string TwinResponsePrefix = "$iothub/twin/res/";
    private const string DesiredPatchPrefix = "$iothub/twin/PATCH/properties/desired/";

    public DeviceTopics(string deviceId, string? moduleId = null)
    {
        DeviceId = deviceId;
        ModuleId = moduleId;
        var identity = moduleId is null ? $"devices/{deviceId}" : $"devices/{deviceId}/modules/{moduleId}";
        TelemetryPrefix = identity + "/messages/events/";
        CloudToDevicePrefix = identity + "/messages/devicebound/";
    }

    public string DeviceId { get; }

    public string? ModuleId { get; }

    /// <summary><c>devices/{d}[/modules/{m}]/messages/events/</c></summary>
    public string TelemetryPrefix { get; }

    /// <summary><c>devices/{d}[/modules/{m}]/messages/devicebound/</c></summary>
    public string CloudToDevicePrefix { get; }

    public string CloudToDeviceSubscription => CloudToDevicePrefix + "#";

    /// <summary>The MQTT client id: <c>{deviceId}</c> or <c>{deviceId}/{moduleId}</c>.</summary>
    public string ClientId => ModuleId is null ? DeviceId : $"{DeviceId}/{ModuleId}";

    /// <summary>The MQTT user name: <c>{host}/{deviceId}[/{moduleId}]/?api-version=…[&amp;model-id=…][&amp;DeviceClientType=…]</c>.</summary>
    public string UserName(string hostName, string? modelId = null, string? clientType = null)
    {
        var name = $"{hostName}/{ClientId}/?api-version={ApiVersion}";
        if (!string.IsNullOrEmpty(clientType))
        {
            name += "&DeviceClientType=" + Uri.EscapeDataString(clientType);
        }

        if (!string.IsNullOrEmpty(modelId))
        {
            name += "&model-id=" + Uri.EscapeDataString(modelId);
        }

        return name;
    }

    public string Telemetry(IEnumerable<KeyValuePair<string, string?>> properties) => TelemetryPrefix + PropertyBag.Encode(properties);

    public bool IsCloudToDevice(string topic) => topic.StartsWith(CloudToDevicePrefix, StringComparison.Ordinal);

    /// <summary>The property bag of a C2D topic, decoded.</summary>
    public Dictionary<string, string?> CloudToDeviceProperties(string topic) => PropertyBag.Decode(topic[CloudToDevicePrefix.Length..]);

    public static string TwinGet(string requestId) => $"$iothub/twin/GET/?$rid={requestId}";

    public static string TwinPatchReported(string requestId) => $"$iothub/twin/PATCH/properties/reported/?$rid={requestId}";

    public static string MethodResponse(int status, string requestId) => $"$iothub/methods/res/{status.ToString(CultureInfo.InvariantCulture)}/?$rid={requestId}";

    /// <summary>Parses <c>$iothub/methods/POST/{method}/?$rid={rid}</c>.</summary>
    public static bool TryParseMethodRequest(string topic, out string methodName, out string requestId)
    {
        methodName = requestId = string.Empty;
        if (!topic.StartsWith(MethodRequestPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = topic[MethodRequestPrefix.Length..];
        var slash = rest.IndexOf("/?", StringComparison.Ordinal);
        if (slash <= 0)
        {
            return false;
        }

        methodName = Uri.UnescapeDataString(rest[..slash]);
        var query = PropertyBag.Decode(rest[(slash + 2)..]);
        if (!query.TryGetValue("$rid", out var rid) || string.IsNullOrEmpty(rid))
        {
            return false;
        }

        requestId = rid;
        return true;
    }

    /// <summary>Parses <c>$iothub/twin/res/{status}/?$rid={rid}[&amp;$version={v}]</c>.</summary>
    public static bool TryParseTwinResponse(string topic, out int status, out string requestId, out long? version)
    {
        status = 0;
        requestId = string.Empty;
        version = null;
        if (!topic.StartsWith(TwinResponsePrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = topic[TwinResponsePrefix.Length..];
        var slash = rest.IndexOf("/?", StringComparison.Ordinal);
        if (slash <= 0 || !int.TryParse(rest[..slash], NumberStyles.None, CultureInfo.InvariantCulture, out status))
        {
            return false;
        }

        var query = PropertyBag.Decode(rest[(slash + 2)..]);
        if (!query.TryGetValue("$rid", out var rid) || string.IsNullOrEmpty(rid))
        {
            return false;
        }

        requestId = rid;
        if (query.TryGetValue("$version", out var v) && long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
        {
            version = parsed;
        }

        return true;
    }

    /// <summary>Parses <c>$iothub/twin/PATCH/properties/desired/?$version={n}</c>.</summary>
    public static bool TryParseDesiredPatch(string topic, out long? version)
    {
        version = null;
        if (!topic.StartsWith(DesiredPatchPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var query = PropertyBag.Decode(topic[DesiredPatchPrefix.Length..].TrimStart('?'));
        if (query.TryGetValue("$version", out var v) && long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
        {
            version = parsed;
        }

        return true;
    }
}
