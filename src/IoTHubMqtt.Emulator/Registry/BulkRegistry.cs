using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Emulator.Http;

namespace IoTHubMqtt.Emulator.Registry;

/// <summary>
/// <c>POST /devices</c> (Bulk Registry - Update Registry): a JSON array of up to 100 ExportImportDevice entries, each
/// applied on its own; the answer is BulkRegistryOperationResult <c>{isSuccessful, errors[], warnings[]}</c> with 200 OK, one
/// error per device that failed (its error code by name, e.g. DeviceAlreadyExists). More than 100 devices is 413
/// TooManyDevices; the same device twice is 400 DeviceDefinedMultipleTimes; neither applies anything.
/// See https://learn.microsoft.com/rest/api/iothub/service/bulk-registry/update-registry
/// </summary>
internal static class BulkRegistry
{
    public const int MaxDevices = 100;

    /// <summary>The entries of a bulk body, checked for size and duplicates (before any is applied).</summary>
    public static JsonArray Parse(ReadOnlySpan<byte> body)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(body.IsEmpty ? "null"u8 : body);
        }
        catch (JsonException)
        {
            throw new HubError(400, 400006, "IotHubFormatError", "The body is not valid JSON.");
        }

        if (node is not JsonArray entries || entries.Any(e => e is not JsonObject))
        {
            throw new HubError(400, 400004, "ArgumentInvalid", "The body must be a JSON array of devices (ExportImportDevice objects).");
        }

        if (entries.Count == 0)
        {
            throw new HubError(400, 400004, "ArgumentInvalid", "The array of devices is empty.");
        }

        if (entries.Count > MaxDevices)
        {
            throw new HubError(413, 413002, "TooManyDevices", $"A bulk registry operation takes at most {MaxDevices} devices, not {entries.Count}.");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in entries.OfType<JsonObject>())
        {
            var id = ExportImportDevices.IdOf(entry);
            if (id is not null && !seen.Add(id + "/" + (entry["moduleId"]?.ToString() ?? "")))
            {
                throw new HubError(400, 400011, "DeviceDefinedMultipleTimes", $"The device '{id}' is given more than once.");
            }
        }

        return entries;
    }

    /// <summary>How many devices a bulk body carries (what the tier throttle counts), or 1 when it cannot tell.</summary>
    public static int CountDevices(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
            {
                return 1;
            }

            var count = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                count++;
                reader.Skip();
            }

            return Math.Max(1, count);
        }
        catch (JsonException)
        {
            return 1;
        }
    }

    public static HttpResponse Apply(HubState hub, HttpRequest request)
    {
        var entries = Parse(request.Body);
        var errors = new JsonArray();
        foreach (var entry in entries.OfType<JsonObject>())
        {
            if (ExportImportDevices.Apply(hub, entry, null, ExportImportDevices.BulkModes) is { } error)
            {
                errors.Add(error.ToBulkJson());
            }
        }

        return HttpResponse.Json(200, new JsonObject
        {
            ["isSuccessful"] = errors.Count == 0,
            ["errors"] = errors,
            ["warnings"] = new JsonArray(),
        });
    }
}
