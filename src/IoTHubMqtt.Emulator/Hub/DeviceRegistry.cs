using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Emulator.Storage;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// The identity registry: devices and module identities, their keys and status, kept in memory and in the store. Every
/// change that is acknowledged is written to the store before the call returns. Guarded by the hub's lock
/// (<paramref name="gate"/>), which the other parts of the hub share so that a change spanning parts is one step.
/// </summary>
internal sealed class DeviceRegistry(object gate, IHubStore store, TimeProvider time, EmulatorLog log)
{
    private readonly Dictionary<string, DeviceIdentity> devices = new(StringComparer.Ordinal);

    /// <summary>Raised (outside the lock) when an identity is deleted or disabled, or its key changes: its connection must end.</summary>
    public event Action<string>? Revoked;

    /// <summary>Raised under the lock for each identity being deleted: parts that keep state per identity drop it in the same step.</summary>
    public event Action<string>? Removing;

    private DateTime Now => time.GetUtcNow().UtcDateTime;

    public int Count
    {
        get
        {
            lock (gate)
            {
                return devices.Count;
            }
        }
    }

    /// <summary>Takes the identities kept in the store (before the hub serves anyone).</summary>
    public void Load(IEnumerable<DeviceIdentity> stored)
    {
        lock (gate)
        {
            foreach (var device in stored)
            {
                devices[device.Key] = device;
            }
        }
    }

    /// <summary>An identity by key (<c>{deviceId}</c> or <c>{deviceId}/{moduleId}</c>), or null.</summary>
    public DeviceIdentity? Find(string key)
    {
        lock (gate)
        {
            return devices.GetValueOrDefault(key);
        }
    }

    public bool Contains(string key)
    {
        lock (gate)
        {
            return devices.ContainsKey(key);
        }
    }

    /// <summary>Under the lock: an identity by key, or the hub's 404.</summary>
    internal DeviceIdentity Require(string key) => devices.GetValueOrDefault(key) ?? throw HubError.DeviceNotFound(key);

    /// <summary>Under the lock: stores a changed copy of an identity (see <see cref="DeviceIdentity.Copy"/>) and makes it current.</summary>
    internal void Replace(DeviceIdentity updated)
    {
        store.SaveDevice(updated);
        devices[updated.Key] = updated;
    }

    /// <summary>Creates an identity (ifMatch null) or updates one (ifMatch = its ETag or "*"); returns its JSON.</summary>
    public JsonObject Put(string parentId, string? moduleId, JsonObject body, string? ifMatch)
    {
        if (!IdentityValidator.IsValidDeviceId(parentId))
        {
            throw HubError.BadRequest("The device ID is not valid: up to 128 ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ ' +");
        }

        if (moduleId is not null && !IdentityValidator.IsValidModuleId(moduleId))
        {
            throw HubError.BadRequest("The module ID is not valid.");
        }

        if (body["deviceId"] is JsonValue idValue && idValue.GetValue<string>() != parentId)
        {
            throw HubError.BadRequest("The deviceId in the body does not match the one in the path.");
        }

        if (moduleId is not null && body["moduleId"] is JsonValue moduleValue && moduleValue.GetValue<string>() != moduleId)
        {
            throw HubError.BadRequest("The moduleId in the body does not match the one in the path.");
        }

        if (moduleId is not null && Find(parentId) is null)
        {
            throw HubError.DeviceNotFound(parentId);
        }

        var key = moduleId is null ? parentId : $"{parentId}/{moduleId}";
        var status = body["status"]?.GetValue<string>();
        var auth = body["authentication"] as JsonObject;
        if (auth is null && ifMatch is not null && Find(key) is { } current)
        {
            // An update that leaves authentication out keeps the device's credentials.
            auth = current.AuthType == DeviceAuthType.Sas
                ? new JsonObject { ["type"] = "sas", ["symmetricKey"] = new JsonObject { ["primaryKey"] = current.PrimaryKey, ["secondaryKey"] = current.SecondaryKey } }
                : new JsonObject { ["type"] = "selfSigned", ["x509Thumbprint"] = new JsonObject { ["primaryThumbprint"] = current.PrimaryThumbprint, ["secondaryThumbprint"] = current.SecondaryThumbprint } };
        }

        var type = auth?["type"]?.GetValue<string>() ?? "sas";
        string? primaryKey = null, secondaryKey = null, primaryThumb = null, secondaryThumb = null;
        DeviceAuthType authType;
        switch (type)
        {
            case "sas":
                authType = DeviceAuthType.Sas;
                // The SDKs send empty strings for keys they leave to the hub (Node: Registry.create({ deviceId })): generated.
                primaryKey = NonEmpty(auth?["symmetricKey"]?["primaryKey"]?.GetValue<string>());
                secondaryKey = NonEmpty(auth?["symmetricKey"]?["secondaryKey"]?.GetValue<string>());
                CheckKey(primaryKey);
                CheckKey(secondaryKey);
                break;
            case "selfSigned":
                authType = DeviceAuthType.SelfSigned;
                primaryThumb = NonEmpty(auth?["x509Thumbprint"]?["primaryThumbprint"]?.GetValue<string>());
                secondaryThumb = NonEmpty(auth?["x509Thumbprint"]?["secondaryThumbprint"]?.GetValue<string>());
                if (string.IsNullOrEmpty(primaryThumb))
                {
                    throw HubError.BadRequest("A selfSigned device needs authentication.x509Thumbprint.primaryThumbprint.");
                }

                break;
            default:
                throw HubError.BadRequest($"Authentication type '{type}' is not supported by the emulator (use sas or selfSigned).");
        }

        bool revoked = false;
        JsonObject result;
        lock (gate)
        {
            devices.TryGetValue(key, out var existing);
            if (existing is null)
            {
                if (ifMatch is not null && !IfMatch.IsWildcard(ifMatch))
                {
                    throw HubError.DeviceNotFound(key);
                }

                existing = new DeviceIdentity { DeviceId = parentId, ModuleId = moduleId, StatusUpdatedTime = Now };
            }
            else
            {
                if (ifMatch is null)
                {
                    throw HubError.DeviceAlreadyExists(key);
                }

                if (!IfMatch.Matches(ifMatch, existing.ETag))
                {
                    throw HubError.PreconditionFailed("the ETag does not match the device");
                }
            }

            var updated = existing.Copy();
            updated.AuthType = authType;
            updated.PrimaryKey = authType == DeviceAuthType.Sas ? primaryKey ?? existing.PrimaryKey ?? SharedAccessKeys.Generate() : null;
            updated.SecondaryKey = authType == DeviceAuthType.Sas ? secondaryKey ?? existing.SecondaryKey ?? SharedAccessKeys.Generate() : null;
            updated.PrimaryThumbprint = primaryThumb?.ToUpperInvariant();
            updated.SecondaryThumbprint = secondaryThumb?.ToUpperInvariant();
            if (status is not null)
            {
                var enabled = status switch
                {
                    "enabled" => true,
                    "disabled" => false,
                    _ => throw HubError.BadRequest("status must be 'enabled' or 'disabled'."),
                };
                if (enabled != updated.Enabled)
                {
                    updated.Enabled = enabled;
                    updated.StatusUpdatedTime = Now;
                    revoked = !enabled;
                }
            }

            updated.StatusReason = body["statusReason"]?.GetValue<string>() ?? updated.StatusReason;
            revoked |= existing.PrimaryKey != updated.PrimaryKey && existing.PrimaryKey is not null;
            updated.ETag = DeviceIdentity.NewETag();
            Replace(updated);
            result = HubJson.Device(updated);
        }

        if (revoked)
        {
            Revoked?.Invoke(key);
        }

        log.Information($"Identity '{key}' saved.");
        return result;
    }

    public JsonObject GetJson(string key)
    {
        lock (gate)
        {
            return HubJson.Device(Require(key));
        }
    }

    /// <summary>Devices (not modules) in id order, at most <paramref name="top"/>.</summary>
    public JsonArray List(int top)
    {
        lock (gate)
        {
            return new JsonArray(devices.Values.Where(d => d.ModuleId is null).OrderBy(d => d.DeviceId, StringComparer.Ordinal).Take(top).Select(d => (JsonNode)HubJson.Device(d)).ToArray());
        }
    }

    /// <summary>The ids of every device (not module), in id order: a snapshot for export jobs.</summary>
    public List<string> DeviceIds()
    {
        lock (gate)
        {
            return devices.Values.Where(d => d.ModuleId is null).Select(d => d.DeviceId).Order(StringComparer.Ordinal).ToList();
        }
    }

    /// <summary>Under the lock: devices (not modules) in id order from <paramref name="skip"/>, one more than <paramref name="take"/> when there are.</summary>
    internal List<DeviceIdentity> DevicesInOrder(int skip, int take) =>
        devices.Values.Where(d => d.ModuleId is null).OrderBy(d => d.DeviceId, StringComparer.Ordinal).Skip(skip).Take(take).ToList();

    public JsonArray ListModules(string deviceId)
    {
        lock (gate)
        {
            if (!devices.ContainsKey(deviceId))
            {
                throw HubError.DeviceNotFound(deviceId);
            }

            return new JsonArray(devices.Values.Where(d => d.DeviceId == deviceId && d.ModuleId is not null)
                .OrderBy(d => d.ModuleId, StringComparer.Ordinal).Select(d => (JsonNode)HubJson.Device(d)).ToArray());
        }
    }

    /// <summary>Deletes an identity (a device takes its modules with it); ifMatch null or its ETag or "*".</summary>
    public void Delete(string key, string? ifMatch)
    {
        List<string> removed;
        lock (gate)
        {
            var existing = Require(key);
            if (ifMatch is not null && !IfMatch.Matches(ifMatch, existing.ETag))
            {
                throw HubError.PreconditionFailed("the ETag does not match the device");
            }

            removed = existing.ModuleId is null
                ? devices.Values.Where(d => d.DeviceId == existing.DeviceId).Select(d => d.Key).ToList()
                : [key];
            foreach (var gone in removed)
            {
                store.DeleteDevice(gone);
                devices.Remove(gone);
                Removing?.Invoke(gone);
            }
        }

        foreach (var gone in removed)
        {
            Revoked?.Invoke(gone);
        }

        log.Information($"Device '{key}' deleted.");
    }

    /// <summary>Records a connection or disconnection (kept in memory only, as the hub reports it).</summary>
    public void SetConnectionState(string key, bool connected)
    {
        lock (gate)
        {
            if (devices.TryGetValue(key, out var device))
            {
                device.Connected = connected;
                device.ConnectionStateUpdatedTime = Now;
                device.LastActivityTime = Now;
            }
        }
    }

    private static void CheckKey(string? key)
    {
        if (key is null)
        {
            return;
        }

        Span<byte> buffer = stackalloc byte[128];
        if (!Convert.TryFromBase64String(key, buffer, out var written) || written < 16 || written > 64)
        {
            throw HubError.BadRequest("A symmetric key must be base64 of 16 to 64 bytes.");
        }
    }

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
