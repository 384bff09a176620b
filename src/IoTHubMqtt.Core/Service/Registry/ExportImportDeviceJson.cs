using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service.Registry;

/// <summary>
/// The hub's ExportImportDevice JSON: one device (identity and twin) as a bulk registry call takes it, and as import and
/// export jobs read and write it, one device per line (<c>devices.txt</c>). Field names follow the service's OpenAPI
/// definition: <c>id, moduleId, eTag, importMode, status, statusReason, authentication, twinETag, tags, properties</c>.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-bulk-identity-mgmt
/// </summary>
public static class ExportImportDeviceJson
{
    /// <summary>The wire name of an import mode (camelCase, as the REST reference spells it).</summary>
    public static string ModeName(RegistryImportMode mode) => mode switch
    {
        RegistryImportMode.Create => "create",
        RegistryImportMode.Update => "update",
        RegistryImportMode.UpdateIfMatchETag => "updateIfMatchETag",
        RegistryImportMode.Delete => "delete",
        RegistryImportMode.DeleteIfMatchETag => "deleteIfMatchETag",
        RegistryImportMode.CreateOrUpdate => "createOrUpdate",
        RegistryImportMode.CreateOrUpdateIfMatchETag => "createOrUpdateIfMatchETag",
        _ => throw new ArgumentOutOfRangeException(nameof(mode)),
    };

    /// <summary>The ExportImportDevice object for one operation.</summary>
    public static JsonObject Write(RegistryOperation operation)
    {
        ArgumentNullException.ThrowIfNull(operation);
        var spec = operation.Device;
        var json = new JsonObject { ["id"] = spec.DeviceId, ["importMode"] = ModeName(operation.Mode) };
        if (spec.ETag is not null && operation.Mode is RegistryImportMode.UpdateIfMatchETag or RegistryImportMode.DeleteIfMatchETag or RegistryImportMode.CreateOrUpdateIfMatchETag)
        {
            json["eTag"] = spec.ETag;
        }

        if (operation.Mode is RegistryImportMode.Delete or RegistryImportMode.DeleteIfMatchETag)
        {
            return json;
        }

        json["status"] = spec.Status ?? "enabled";
        var type = spec.AuthenticationType ?? "sas";
        var auth = new JsonObject { ["type"] = type };
        if (type == "selfSigned")
        {
            auth["x509Thumbprint"] = new JsonObject { ["primaryThumbprint"] = spec.PrimaryThumbprint, ["secondaryThumbprint"] = spec.SecondaryThumbprint };
        }
        else
        {
            var primary = spec.PrimaryKey ?? operation.GeneratedKeys?.Primary;
            var secondary = spec.SecondaryKey ?? operation.GeneratedKeys?.Secondary;
            if (primary is not null || secondary is not null)
            {
                auth["symmetricKey"] = new JsonObject { ["primaryKey"] = primary, ["secondaryKey"] = secondary };
            }
        }

        json["authentication"] = auth;
        if (spec.Tags is { Count: > 0 } tags)
        {
            json["tags"] = tags.DeepClone();
        }

        if (operation.DesiredProperties is { Count: > 0 } desired)
        {
            json["properties"] = new JsonObject { ["desired"] = desired.DeepClone() };
        }

        return json;
    }

    /// <summary>
    /// Reads one exported line: the identity (keys are null when the export excluded them) with its twin's tags and
    /// properties. A line that is not such an object is an IoTHubInvalidResponse naming the line.
    /// </summary>
    public static ServiceDevice Read(string line, string hostName, long lineNumber)
    {
        JsonObject json;
        try
        {
            json = JsonNode.Parse(line) as JsonObject ?? throw new JsonException("not a JSON object");
        }
        catch (JsonException ex)
        {
            throw new IoTHubMqttException(ErrorIds.ExportFileInvalid,
                $"Line {lineNumber} of the export file is not a device: {ex.Message}", null, $"line {lineNumber}", ex);
        }

        var auth = json["authentication"] as JsonObject;
        var properties = json["properties"] as JsonObject;
        return new ServiceDevice
        {
            DeviceId = ServiceDevice.Text(json, "id") ?? throw new IoTHubMqttException(ErrorIds.ExportFileInvalid,
                $"Line {lineNumber} of the export file has no device id.", null, $"line {lineNumber}"),
            HostName = hostName,
            ETag = ServiceDevice.Text(json, "eTag")?.Trim('"'),
            Status = ServiceDevice.Text(json, "status")?.ToLowerInvariant() ?? "enabled",
            StatusReason = ServiceDevice.Text(json, "statusReason"),
            AuthenticationType = ServiceDevice.Text(auth, "type") ?? (auth?["x509Thumbprint"] is JsonObject ? "selfSigned" : "sas"),
            PrimaryKey = ServiceDevice.Text(auth?["symmetricKey"] as JsonObject, "primaryKey"),
            SecondaryKey = ServiceDevice.Text(auth?["symmetricKey"] as JsonObject, "secondaryKey"),
            PrimaryThumbprint = ServiceDevice.Text(auth?["x509Thumbprint"] as JsonObject, "primaryThumbprint"),
            SecondaryThumbprint = ServiceDevice.Text(auth?["x509Thumbprint"] as JsonObject, "secondaryThumbprint"),
            Tags = (json["tags"] as JsonObject)?.DeepClone() as JsonObject,
            DesiredProperties = WithoutMetadata(properties?["desired"] as JsonObject),
            ReportedProperties = WithoutMetadata(properties?["reported"] as JsonObject),
        };
    }

    private static JsonObject? WithoutMetadata(JsonObject? section)
    {
        if (section?.DeepClone() is not JsonObject copy)
        {
            return null;
        }

        copy.Remove("$metadata");
        copy.Remove("$version");
        return copy;
    }
}
