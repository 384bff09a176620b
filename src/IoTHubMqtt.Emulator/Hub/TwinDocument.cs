using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// Twin JSON rules: patches merge, <c>null</c> deletes, names may not hold '.', '$', ' ' or control characters,
/// each section is at most 32 KB and 10 levels deep.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-device-twins#tags-and-properties-format
/// </summary>
internal static class TwinDocument
{
    public const int MaxSectionBytes = 32 * 1024;
    public const int MaxDepth = 10;

    /// <summary>Parses a patch body into an object, or throws a 400 <see cref="HubError"/>.</summary>
    public static JsonObject ParsePatch(ReadOnlySpan<byte> body)
    {
        var node = ParseStrict(body.IsEmpty ? "{}"u8 : body, "The patch");

        if (node is not JsonObject patch)
        {
            throw HubError.BadRequest("The patch must be a JSON object.");
        }

        Validate(patch, 1, allowVersion: true);
        return patch;
    }

    /// <summary>
    /// Parses JSON the way the hub takes it: well-formed (RFC 8259), no name twice in one object, and no string (name or
    /// value) with an unpaired surrogate escape such as <c>"\ud800"</c>, which has no UTF-8 form; otherwise a 400.
    /// </summary>
    public static JsonNode? ParseStrict(ReadOnlySpan<byte> json, string what)
    {
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
            var names = new Stack<HashSet<string>?>();
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        names.Push(new HashSet<string>(StringComparer.Ordinal));
                        break;
                    case JsonTokenType.StartArray:
                        names.Push(null);
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        names.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        var name = reader.GetString()!;
                        if (names.Peek() is { } seen && !seen.Add(name))
                        {
                            throw HubError.BadRequest($"{what} names '{Printable(name)}' twice in one object.");
                        }

                        break;
                    case JsonTokenType.String:
                        _ = reader.GetString();
                        break;
                }
            }

            return JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException)
        {
            throw HubError.BadRequest($"{what} is not valid JSON.");
        }
        catch (InvalidOperationException)
        {
            // Utf8JsonReader.GetString on an escaped lone surrogate
            throw HubError.BadRequest($"{what} has a string with an unpaired surrogate (\\uD800-\\uDFFF), which no UTF-8 text can hold.");
        }
    }

    /// <summary>Checks names and depth of a patch (before it is applied).</summary>
    public static void Validate(JsonObject obj, int depth, bool allowVersion = false, bool allowMetadata = false)
    {
        if (depth > MaxDepth)
        {
            throw HubError.BadRequest($"The twin is deeper than {MaxDepth} levels.");
        }

        foreach (var (name, value) in obj)
        {
            if (allowVersion && depth == 1 && (name == "$version" || (allowMetadata && name == TwinMetadata.Name)))
            {
                continue;
            }

            if (name.Length == 0 || name.Length > 1024 || name.Contains('.', StringComparison.Ordinal) || name.Contains('$', StringComparison.Ordinal) ||
                name.Contains(' ', StringComparison.Ordinal) || name.Any(char.IsControl))
            {
                throw HubError.BadRequest($"The property name '{Printable(name)}' is not allowed: no '.', '$', spaces or control characters.");
            }

            if (value is JsonObject child)
            {
                Validate(child, depth + 1);
            }
            else if (value is JsonArray array)
            {
                ValidateArray(array, depth + 1);
            }
        }
    }

    private static void ValidateArray(JsonArray array, int depth)
    {
        if (depth > MaxDepth)
        {
            throw HubError.BadRequest($"The twin is deeper than {MaxDepth} levels.");
        }

        foreach (var item in array)
        {
            if (item is JsonObject o)
            {
                Validate(o, depth + 1);
            }
            else if (item is JsonArray a)
            {
                ValidateArray(a, depth + 1);
            }
        }
    }

    /// <summary>Merges <paramref name="patch"/> into a copy of <paramref name="target"/> (null deletes) and checks the size.</summary>
    public static JsonObject Merge(JsonObject target, JsonObject patch)
    {
        var result = (JsonObject)target.DeepClone();
        MergeInto(result, patch);
        CheckSize(result);
        return result;
    }

    public static void CheckSize(JsonObject section)
    {
        if (Encoding.UTF8.GetByteCount(section.ToJsonString()) > MaxSectionBytes)
        {
            throw HubError.MessageTooLarge(MaxSectionBytes);
        }
    }

    private static void MergeInto(JsonObject target, JsonObject patch)
    {
        foreach (var (name, value) in patch.ToList())
        {
            if (name is "$version" or TwinMetadata.Name)
            {
                continue;
            }

            if (value is null)
            {
                target.Remove(name);
            }
            else if (value is JsonObject patchChild && target[name] is JsonObject targetChild)
            {
                MergeInto(targetChild, patchChild);
            }
            else if (value is JsonObject newChild)
            {
                var copy = new JsonObject();
                MergeInto(copy, newChild); // nulls inside a new object delete nothing and are dropped
                target[name] = copy;
            }
            else
            {
                target[name] = value.DeepClone();
            }
        }
    }

    /// <summary>A section with its <c>$version</c> (and, for the service, its <c>$metadata</c>), as the device or the service sees it.</summary>
    public static JsonObject WithVersion(JsonObject section, long version, JsonObject? metadata = null)
    {
        var copy = (JsonObject)section.DeepClone();
        if (metadata is not null)
        {
            copy[TwinMetadata.Name] = metadata.DeepClone();
        }

        copy["$version"] = version;
        return copy;
    }

    private static string Printable(string name) => new(name.Take(64).Select(c => char.IsControl(c) ? '?' : c).ToArray());
}
