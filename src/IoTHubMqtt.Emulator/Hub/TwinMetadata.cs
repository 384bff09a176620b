using System.Text.Json.Nodes;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// A twin section's <c>$metadata</c>, as the service sees it: a tree shaped like the section whose every level (the section
/// itself, each object, each leaf) holds <c>$lastUpdated</c> (ISO 8601 UTC) and, for desired properties,
/// <c>$lastUpdatedVersion</c>, the desired <c>$version</c> of that update; a section never written has only
/// <c>{"$lastUpdated":"0001-01-01T00:00:00Z"}</c>. Devices do not get it.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-device-twins#metadata
/// </summary>
internal static class TwinMetadata
{
    public const string Name = "$metadata";
    private const string LastUpdated = "$lastUpdated";
    private const string LastUpdatedVersion = "$lastUpdatedVersion";

    /// <summary>The metadata of a section never written.</summary>
    public static JsonObject Empty() => new() { [LastUpdated] = "0001-01-01T00:00:00Z" };

    /// <summary>What an update stamps: the time and, for desired properties, the new version.</summary>
    public static JsonObject Stamp(DateTime now, long? version)
    {
        var stamp = new JsonObject { [LastUpdated] = HubJson.IsoTime(now) };
        if (version is { } v)
        {
            stamp[LastUpdatedVersion] = v;
        }

        return stamp;
    }

    /// <summary>Metadata for a section written whole (a replace): every level stamped.</summary>
    public static JsonObject ForWhole(JsonObject section, JsonObject stamp)
    {
        var metadata = (JsonObject)stamp.DeepClone();
        foreach (var (name, value) in section)
        {
            if (name is "$version" or Name || value is null)
            {
                continue;
            }

            metadata[name] = value is JsonObject child ? ForWhole(child, stamp) : stamp.DeepClone();
        }

        return metadata;
    }

    /// <summary>
    /// The metadata after <paramref name="patch"/> was merged into <paramref name="before"/> (the section's value before the
    /// merge), following <see cref="TwinDocument.Merge"/>: touched levels stamped, deleted ones gone, the rest kept.
    /// </summary>
    public static JsonObject AfterPatch(JsonObject before, JsonObject metadata, JsonObject patch, JsonObject stamp)
    {
        var result = (JsonObject)metadata.DeepClone();
        Apply(before, result, patch, stamp);
        return result;
    }

    private static void Apply(JsonObject before, JsonObject metadata, JsonObject patch, JsonObject stamp)
    {
        foreach (var (key, value) in stamp)
        {
            metadata[key] = value?.DeepClone();
        }

        foreach (var (name, value) in patch)
        {
            if (name is "$version" or Name)
            {
                continue;
            }

            if (value is null)
            {
                metadata.Remove(name);
            }
            else if (value is JsonObject patchChild && before[name] is JsonObject beforeChild)
            {
                var child = metadata[name] as JsonObject ?? [];
                metadata[name] = child;
                Apply(beforeChild, child, patchChild, stamp);
            }
            else if (value is JsonObject newChild)
            {
                metadata[name] = ForWhole(WithoutNulls(newChild), stamp);
            }
            else
            {
                metadata[name] = stamp.DeepClone();
            }
        }
    }

    private static JsonObject WithoutNulls(JsonObject value)
    {
        var copy = new JsonObject();
        foreach (var (name, child) in value)
        {
            if (child is not null)
            {
                copy[name] = child is JsonObject o ? WithoutNulls(o) : child.DeepClone();
            }
        }

        return copy;
    }
}
