using System.Globalization;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Emulator.Hub;

namespace IoTHubMqtt.Emulator.Registry;

/// <summary>A device the registry could not process in a bulk call or an import job.</summary>
internal sealed record RegistryEntryError(string DeviceId, string? ModuleId, HubError Error, string Operation)
{
    /// <summary>DeviceRegistryOperationError as a bulk call answers it: the error code by name.</summary>
    public JsonObject ToBulkJson()
    {
        var json = new JsonObject
        {
            ["deviceId"] = DeviceId,
            ["errorCode"] = Error.Code,
            ["errorStatus"] = Error.Message,
            ["operation"] = Operation,
        };
        if (ModuleId is not null)
        {
            json["moduleId"] = ModuleId;
        }

        return json;
    }

    /// <summary>One line of importErrors.log: the six-digit error code, as the hub writes it there.</summary>
    public JsonObject ToImportLogJson() => new()
    {
        ["deviceId"] = DeviceId,
        ["errorCode"] = Error.ErrorCode,
        ["errorStatus"] = $"{Error.Code}: {Error.Message}",
        ["operation"] = Operation,
    };
}

/// <summary>
/// Applies ExportImportDevice entries to the registry: the device identity (id, eTag, status, statusReason, authentication)
/// and its twin (twinETag, tags, properties.desired), by import mode — create, createOrUpdate, createOrUpdateIfMatchETag,
/// update, updateIfMatchETag, delete, deleteIfMatchETag, updateTwin, updateTwinIfMatchETag (names compared without case,
/// as the Node.js service SDK sends "Update" and "Delete"). Used by the bulk registry call and by import jobs; export writes
/// the same shape. Reported properties in an entry are the device's own and are not imported.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-bulk-identity-mgmt#import-devices
/// </summary>
internal static class ExportImportDevices
{
    public static readonly string[] BulkModes = ["create", "update", "updateIfMatchETag", "delete", "deleteIfMatchETag", "updateTwin", "updateTwinIfMatchETag"];

    public static readonly string[] ImportModes = [.. BulkModes, "createOrUpdate", "createOrUpdateIfMatchETag"];

    /// <summary>The device id of an entry (<c>id</c>), or null.</summary>
    public static string? IdOf(JsonObject entry) => Text(entry, "id");

    /// <summary>
    /// Applies one entry; returns null when done, or the device's error. <paramref name="defaultMode"/> applies when the entry
    /// names none (import jobs: createOrUpdate). <paramref name="allowedModes"/> limits the modes (bulk calls take fewer).
    /// </summary>
    public static RegistryEntryError? Apply(HubState hub, JsonObject entry, string? defaultMode, IReadOnlyCollection<string> allowedModes)
    {
        var id = IdOf(entry) ?? "";
        var moduleId = Text(entry, "moduleId");
        var modeText = Text(entry, "importMode") ?? defaultMode;
        var mode = allowedModes.FirstOrDefault(m => m.Equals(modeText, StringComparison.OrdinalIgnoreCase));
        try
        {
            if (!IdentityValidator.IsValidDeviceId(id))
            {
                throw new HubError(400, 400004, "ArgumentInvalid", id.Length == 0 ? "The entry has no id." : $"The device id '{id}' is not valid.");
            }

            if (moduleId is not null)
            {
                throw new HubError(400, 400004, "ArgumentInvalid", "The emulator imports device identities, not module identities.");
            }

            if (mode is null)
            {
                throw new HubError(400, 400004, "ArgumentInvalid", $"The importMode '{modeText}' is not one of {string.Join(", ", allowedModes)}.");
            }

            var existing = hub.FindDevice(id);
            var etag = Text(entry, "eTag") ?? Text(entry, "etag");
            var ifMatch = mode.EndsWith("IfMatchETag", StringComparison.OrdinalIgnoreCase);
            if (ifMatch && etag is null && !mode.StartsWith("updateTwin", StringComparison.OrdinalIgnoreCase))
            {
                throw new HubError(400, 400004, "ArgumentInvalid", $"The importMode {mode} needs the device's eTag.");
            }

            switch (mode)
            {
                case "delete":
                case "deleteIfMatchETag":
                    hub.DeleteDevice(id, ifMatch ? etag : null);
                    return null;
                case "create":
                    if (existing is not null)
                    {
                        throw HubError.DeviceAlreadyExists(id);
                    }

                    PutIdentity(hub, id, entry, null, TwinBody(entry));
                    break;
                case "update":
                case "updateIfMatchETag":
                    if (existing is null)
                    {
                        throw HubError.DeviceNotFound(id);
                    }

                    PutIdentity(hub, id, entry, ifMatch ? etag : "*", TwinBody(entry));
                    break;
                case "createOrUpdate":
                case "createOrUpdateIfMatchETag":
                    PutIdentity(hub, id, entry, existing is null ? null : ifMatch ? etag : "*", TwinBody(entry));
                    break;
                case "updateTwin":
                case "updateTwinIfMatchETag":
                    if (existing is null)
                    {
                        throw HubError.DeviceNotFound(id);
                    }

                    break;
            }

            if (TwinBody(entry) is { } twin)
            {
                var twinETag = Text(entry, "twinETag");
                hub.PatchTwin(id, twin, mode.Equals("updateTwinIfMatchETag", StringComparison.OrdinalIgnoreCase) || (ifMatch && twinETag is not null) ? twinETag ?? "" : null);
            }

            return null;
        }
        catch (HubError error)
        {
            return new RegistryEntryError(id, moduleId, error, mode ?? modeText ?? "unknown");
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or System.Text.Json.JsonException)
        {
            return new RegistryEntryError(id, moduleId, new HubError(400, 400006, "IotHubFormatError", "A field of the entry has the wrong type."), mode ?? "unknown");
        }
    }

    /// <summary>The export line of a device: identity, keys unless excluded, and twin.</summary>
    public static JsonObject Export(JsonObject device, JsonObject twin, bool excludeKeys)
    {
        var auth = (JsonObject?)device["authentication"]?.DeepClone() ?? [];
        if (excludeKeys && auth["symmetricKey"] is JsonObject keys)
        {
            keys["primaryKey"] = null;
            keys["secondaryKey"] = null;
        }

        var properties = twin["properties"] as JsonObject;
        return new JsonObject
        {
            ["id"] = device["deviceId"]?.DeepClone(),
            ["eTag"] = device["etag"]?.DeepClone(),
            ["status"] = device["status"]?.DeepClone(),
            ["statusReason"] = device["statusReason"]?.DeepClone(),
            ["authentication"] = auth,
            ["twinETag"] = twin["etag"]?.DeepClone(),
            ["tags"] = twin["tags"]?.DeepClone() ?? new JsonObject(),
            ["properties"] = new JsonObject
            {
                ["desired"] = properties?["desired"]?.DeepClone() ?? new JsonObject(),
                ["reported"] = properties?["reported"]?.DeepClone() ?? new JsonObject(),
            },
            ["capabilities"] = device["capabilities"]?.DeepClone(),
        };
    }

    private static void PutIdentity(HubState hub, string id, JsonObject entry, string? ifMatch, JsonObject? twin)
    {
        if (twin is not null)
        {
            // Check the twin first, so a bad twin does not leave a device created without it.
            if (twin["tags"] is JsonObject tags)
            {
                TwinDocument.Validate(tags, 1);
            }

            if (twin["properties"]?["desired"] is JsonObject desired)
            {
                TwinDocument.Validate(desired, 1, allowVersion: true);
            }
        }

        var body = new JsonObject { ["deviceId"] = id };
        if (Text(entry, "status") is { } status)
        {
            body["status"] = status.ToLowerInvariant();
        }

        if (Text(entry, "statusReason") is { } reason)
        {
            body["statusReason"] = reason;
        }

        if (entry["authentication"] is JsonObject auth)
        {
            var copy = (JsonObject)auth.DeepClone();
            // Blank keys (the Node.js SDK sends "" for "generate one") mean: let the hub choose.
            if (copy["symmetricKey"] is JsonObject keys)
            {
                foreach (var name in new[] { "primaryKey", "secondaryKey" })
                {
                    if (keys[name] is JsonValue v && v.TryGetValue<string>(out var key) && key.Length == 0)
                    {
                        keys[name] = null;
                    }
                }
            }

            if (copy["type"] is JsonValue t && t.TryGetValue<string>(out var type))
            {
                copy["type"] = type.Equals("selfSigned", StringComparison.OrdinalIgnoreCase) ? "selfSigned" : type.Equals("sas", StringComparison.OrdinalIgnoreCase) ? "sas" : type;
            }

            body["authentication"] = copy;
        }

        hub.PutDevice(id, body, ifMatch);
    }

    private static JsonObject? TwinBody(JsonObject entry)
    {
        var tags = entry["tags"] as JsonObject;
        var desired = entry["properties"]?["desired"] as JsonObject;
        if (tags is null && desired is null)
        {
            return null;
        }

        var body = new JsonObject();
        if (tags is { Count: > 0 })
        {
            body["tags"] = tags.DeepClone();
        }

        if (desired is not null)
        {
            var clean = (JsonObject)desired.DeepClone();
            clean.Remove("$metadata");
            clean.Remove("$version");
            if (clean.Count > 0)
            {
                body["properties"] = new JsonObject { ["desired"] = clean };
            }
        }

        return body.Count == 0 ? null : body;
    }

    private static string? Text(JsonObject json, string name) =>
        json[name] is JsonValue v && v.TryGetValue<string>(out var text) && text.Length > 0 ? text
        : json[name] is JsonValue n && n.TryGetValue<long>(out var number) ? number.ToString(CultureInfo.InvariantCulture) : null;
}
