using System.Globalization;
using System.Text.Json.Nodes;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>The JSON the hub answers with for an identity and its twin, as the service REST API shapes them.</summary>
internal static class HubJson
{
    public static string IsoTime(DateTime t) => t == DateTime.MinValue ? "0001-01-01T00:00:00Z" : t.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", CultureInfo.InvariantCulture);

    public static JsonObject Device(DeviceIdentity d) => WithModuleId(d, new JsonObject
    {
        ["deviceId"] = d.DeviceId,
        ["generationId"] = d.GenerationId,
        ["etag"] = d.ETag,
        ["connectionState"] = d.Connected ? "Connected" : "Disconnected",
        ["status"] = d.Enabled ? "enabled" : "disabled",
        ["statusReason"] = d.StatusReason,
        ["connectionStateUpdatedTime"] = IsoTime(d.ConnectionStateUpdatedTime),
        ["statusUpdatedTime"] = IsoTime(d.StatusUpdatedTime),
        ["lastActivityTime"] = IsoTime(d.LastActivityTime),
        ["cloudToDeviceMessageCount"] = 0,
        ["authentication"] = new JsonObject
        {
            ["symmetricKey"] = new JsonObject { ["primaryKey"] = d.PrimaryKey, ["secondaryKey"] = d.SecondaryKey },
            ["x509Thumbprint"] = new JsonObject { ["primaryThumbprint"] = d.PrimaryThumbprint, ["secondaryThumbprint"] = d.SecondaryThumbprint },
            ["type"] = d.AuthType == DeviceAuthType.Sas ? "sas" : "selfSigned",
        },
        ["capabilities"] = new JsonObject { ["iotEdge"] = false },
    });

    public static JsonObject Twin(DeviceIdentity d) => WithModuleId(d, new JsonObject
    {
        ["deviceId"] = d.DeviceId,
        ["etag"] = d.TwinETag,
        ["deviceEtag"] = d.ETag,
        ["status"] = d.Enabled ? "enabled" : "disabled",
        ["statusUpdateTime"] = IsoTime(d.StatusUpdatedTime),
        ["connectionState"] = d.Connected ? "Connected" : "Disconnected",
        ["lastActivityTime"] = IsoTime(d.LastActivityTime),
        ["cloudToDeviceMessageCount"] = 0,
        ["modelId"] = "",
        ["authenticationType"] = d.AuthType == DeviceAuthType.Sas ? "sas" : "selfSigned",
        ["x509Thumbprint"] = new JsonObject { ["primaryThumbprint"] = d.PrimaryThumbprint, ["secondaryThumbprint"] = d.SecondaryThumbprint },
        ["version"] = d.TwinVersion,
        ["tags"] = d.Tags.DeepClone(),
        ["properties"] = new JsonObject
        {
            ["desired"] = TwinDocument.WithVersion(d.Desired, d.DesiredVersion, d.DesiredMetadata),
            ["reported"] = TwinDocument.WithVersion(d.Reported, d.ReportedVersion, d.ReportedMetadata),
        },
        ["capabilities"] = new JsonObject { ["iotEdge"] = false },
    });

    private static JsonObject WithModuleId(DeviceIdentity d, JsonObject json)
    {
        if (d.ModuleId is not null)
        {
            json["moduleId"] = d.ModuleId;
            json.Remove("capabilities");
        }

        return json;
    }
}
