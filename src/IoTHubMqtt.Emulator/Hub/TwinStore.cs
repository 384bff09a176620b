using System.Text.Json.Nodes;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// Device and module twins: tags, desired and reported properties with their versions and <c>$metadata</c>. A twin
/// lives with its identity in the <see cref="DeviceRegistry"/> (it is created and deleted with it); changes are made
/// under the hub's lock, stored, and then announced.
/// </summary>
internal sealed class TwinStore(object gate, DeviceRegistry registry, TimeProvider time)
{
    /// <summary>Raised (outside the lock) after the desired properties of a device changed: device id, patch with <c>$version</c>.</summary>
    public event Action<string, JsonObject>? DesiredChanged;

    private DateTime Now => time.GetUtcNow().UtcDateTime;

    /// <summary>The twin as the service reads it.</summary>
    public JsonObject GetJson(string key)
    {
        lock (gate)
        {
            return HubJson.Twin(registry.Require(key));
        }
    }

    /// <summary>The body a device gets for a twin GET: desired and reported with their versions.</summary>
    public JsonObject GetSections(string key)
    {
        lock (gate)
        {
            var device = registry.Require(key);
            return new JsonObject
            {
                ["desired"] = TwinDocument.WithVersion(device.Desired, device.DesiredVersion),
                ["reported"] = TwinDocument.WithVersion(device.Reported, device.ReportedVersion),
            };
        }
    }

    /// <summary>Applies a reported-properties patch from the device; returns the new reported version.</summary>
    public long PatchReported(string key, JsonObject patch)
    {
        lock (gate)
        {
            var device = registry.Require(key);
            var merged = TwinDocument.Merge(device.Reported, patch);
            var updated = device.Copy();
            updated.Reported = merged;
            updated.ReportedMetadata = TwinMetadata.AfterPatch(device.Reported, device.ReportedMetadata, patch, TwinMetadata.Stamp(Now, null));
            updated.ReportedVersion++;
            updated.TwinVersion++;
            updated.TwinETag = DeviceIdentity.NewETag();
            registry.Replace(updated);
            return updated.ReportedVersion;
        }
    }

    /// <summary>Service PATCH /twins/{id}: merges tags and desired properties.</summary>
    public JsonObject Patch(string key, JsonObject body, string? ifMatch) => Update(key, body, ifMatch, replace: false);

    /// <summary>Service PUT /twins/{id}: replaces tags and desired properties.</summary>
    public JsonObject Replace(string key, JsonObject body, string? ifMatch) => Update(key, body, ifMatch, replace: true);

    /// <summary>All device twins in id order from <paramref name="skip"/>, for the query API.</summary>
    public (JsonArray Page, bool More) Query(int skip, int take)
    {
        lock (gate)
        {
            var ordered = registry.DevicesInOrder(skip, take + 1);
            var page = new JsonArray(ordered.Take(take).Select(d => (JsonNode)HubJson.Twin(d)).ToArray());
            return (page, ordered.Count > take);
        }
    }

    private JsonObject Update(string key, JsonObject body, string? ifMatch, bool replace)
    {
        var tags = body["tags"] as JsonObject;
        var desired = body["properties"]?["desired"] as JsonObject;
        // A replace carries the whole twin as read (reported properties and $metadata included): those are read-only and
        // ignored; a patch that names reported properties is refused.
        if (!replace && body["properties"]?["reported"] is not null)
        {
            throw HubError.BadRequest("Reported properties can only be changed by the device.");
        }

        if (tags is not null)
        {
            TwinDocument.Validate(tags, 1);
        }

        if (desired is not null)
        {
            TwinDocument.Validate(desired, 1, allowVersion: true, allowMetadata: true);
        }

        JsonObject? desiredPatch = null;
        JsonObject result;
        lock (gate)
        {
            var device = registry.Require(key);
            if (ifMatch is not null && !IfMatch.Matches(ifMatch, device.TwinETag))
            {
                throw HubError.PreconditionFailed("the ETag does not match the twin");
            }

            var updated = device.Copy();
            if (tags is not null || replace)
            {
                updated.Tags = replace ? Clean(tags ?? []) : TwinDocument.Merge(device.Tags, tags!);
            }

            if (desired is not null || replace)
            {
                var newDesired = replace ? Clean(desired ?? []) : TwinDocument.Merge(device.Desired, desired!);
                TwinDocument.CheckSize(newDesired);
                updated.Desired = newDesired;
                updated.DesiredVersion++;
                var stamp = TwinMetadata.Stamp(Now, updated.DesiredVersion);
                updated.DesiredMetadata = replace
                    ? TwinMetadata.ForWhole(newDesired, stamp)
                    : TwinMetadata.AfterPatch(device.Desired, device.DesiredMetadata, desired!, stamp);
                desiredPatch = TwinDocument.WithVersion(replace ? newDesired : Clean(desired!, keepNulls: true), updated.DesiredVersion);
            }

            updated.TwinVersion++;
            updated.TwinETag = DeviceIdentity.NewETag();
            registry.Replace(updated);
            result = HubJson.Twin(updated);
        }

        if (desiredPatch is not null)
        {
            DesiredChanged?.Invoke(key, desiredPatch);
        }

        return result;
    }

    private static JsonObject Clean(JsonObject section, bool keepNulls = false)
    {
        var copy = (JsonObject)section.DeepClone();
        copy.Remove("$version");
        copy.Remove("$metadata");
        if (!keepNulls)
        {
            foreach (var name in copy.Where(p => p.Value is null).Select(p => p.Key).ToList())
            {
                copy.Remove(name);
            }
        }

        return copy;
    }
}
