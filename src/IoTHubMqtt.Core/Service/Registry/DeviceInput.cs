using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service.Registry;

/// <summary>
/// One device as a user gave it (a CSV row, a pipeline object, parameters): text as typed, blanks allowed. <see cref="Validate"/>
/// turns it into a <see cref="DeviceSpec"/> or says, naming the row, what is wrong with it.
/// </summary>
public sealed class DeviceInput
{
    public string? DeviceId { get; init; }

    /// <summary>enabled or disabled; blank keeps the hub's default (enabled) or the existing status.</summary>
    public string? Status { get; init; }

    /// <summary>sas or selfSigned; blank means sas, or selfSigned when a thumbprint is given.</summary>
    public string? AuthenticationType { get; init; }

    /// <summary>Base64, 16 to 64 bytes. Secret.</summary>
    public string? PrimaryKey { get; init; }

    /// <summary>Base64, 16 to 64 bytes. Secret.</summary>
    public string? SecondaryKey { get; init; }

    public string? PrimaryThumbprint { get; init; }

    public string? SecondaryThumbprint { get; init; }

    /// <summary>Twin tags: a JSON object, or a string holding one (a CSV column); blank means none.</summary>
    public JsonNode? Tags { get; init; }

    /// <summary>The device's ETag, for conditional updates and removals.</summary>
    public string? ETag { get; init; }

    /// <summary>
    /// The validated spec. <paramref name="row"/> (1-based input position) names the row in messages; errors carry the device
    /// id (or <c>input N</c>) as their target. ErrorIds: DeviceIdMissing, InvalidDeviceId, InvalidDeviceStatus,
    /// InvalidAuthenticationType, KeyNotBase64, KeyEmpty, KeyLengthInvalid, ThumbprintMissing, InvalidTags.
    /// </summary>
    public DeviceSpec Validate(int row)
    {
        var id = DeviceId?.Trim();
        if (string.IsNullOrEmpty(id))
        {
            throw new IoTHubMqttException(ErrorIds.DeviceIdMissing,
                $"Input {row} has no DeviceId.", "Give every row a DeviceId (or Id / SerialNumber) value.", $"input {row}");
        }

        if (!IdentityValidator.IsValidDeviceId(id))
        {
            throw new IoTHubMqttException(ErrorIds.InvalidDeviceId,
                $"Input {row}: '{(id.Length > 64 ? id[..64] + "…" : id)}' is not a valid device id: use 1 to 128 ASCII letters, digits or - . + % _ # * ? ! ( ) , : = @ $ '.",
                "Fix the DeviceId of this row.", id);
        }

        var status = Blank(Status)?.ToLowerInvariant();
        if (status is not (null or "enabled" or "disabled"))
        {
            throw new IoTHubMqttException(ErrorIds.InvalidDeviceStatus,
                $"Input {row} ({id}): the status '{Status}' is not 'enabled' or 'disabled'.", null, id);
        }

        var auth = Blank(AuthenticationType) switch
        {
            null => Blank(PrimaryThumbprint) is not null ? "selfSigned" : null,
            var a when a.Equals("sas", StringComparison.OrdinalIgnoreCase) => "sas",
            var a when a.Equals("selfSigned", StringComparison.OrdinalIgnoreCase) => "selfSigned",
            _ => throw new IoTHubMqttException(ErrorIds.InvalidAuthenticationType,
                $"Input {row} ({id}): the authentication type '{AuthenticationType}' is not 'sas' or 'selfSigned'.", null, id),
        };
        var primary = Blank(PrimaryKey);
        var secondary = Blank(SecondaryKey);
        foreach (var (key, name) in new[] { (primary, "PrimaryKey"), (secondary, "SecondaryKey") })
        {
            if (key is not null)
            {
                try
                {
                    if (SharedAccessKeys.Decode(key, name).Length is < 16 or > 64)
                    {
                        throw new IoTHubMqttException(ErrorIds.KeyLengthInvalid, $"The {name} must be 16 to 64 bytes.", null, name);
                    }
                }
                catch (IoTHubMqttException ex)
                {
                    throw new IoTHubMqttException(ex.ErrorId, ex.Kind, $"Input {row} ({id}): {ex.Message}", ex.RecommendedAction, id);
                }
            }
        }

        if (auth == "selfSigned" && Blank(PrimaryThumbprint) is null)
        {
            throw new IoTHubMqttException(ErrorIds.ThumbprintMissing,
                $"Input {row} ({id}): a selfSigned device needs a PrimaryThumbprint.", null, id);
        }

        return new DeviceSpec
        {
            DeviceId = id,
            Status = status,
            AuthenticationType = auth,
            PrimaryKey = auth == "selfSigned" ? null : primary,
            SecondaryKey = auth == "selfSigned" ? null : secondary,
            PrimaryThumbprint = Blank(PrimaryThumbprint),
            SecondaryThumbprint = Blank(SecondaryThumbprint),
            Tags = ParseTags(row, id),
            ETag = Blank(ETag)?.Trim('"'),
        };
    }

    private JsonObject? ParseTags(int row, string id)
    {
        try
        {
            var tags = Tags switch
            {
                null => null,
                JsonObject o => JsonNode.Parse(o.ToJsonString()) as JsonObject, // plain JSON, whatever built it
                JsonValue v when v.TryGetValue<string>(out var text) => string.IsNullOrWhiteSpace(text) ? null
                    : JsonNode.Parse(text) as JsonObject ?? throw new JsonException("it is not a JSON object."),
                _ => throw new JsonException("it is not a JSON object."),
            };
            return tags is { Count: > 0 } ? tags : null;
        }
        catch (JsonException ex)
        {
            throw new IoTHubMqttException(ErrorIds.InvalidTags,
                $"Input {row} ({id}): the tags are not a JSON object or hashtable: {ex.Message}", "Give tags as a hashtable, or as JSON such as {\"site\":\"north\"}.", id);
        }
    }

    /// <summary>The id for a row that failed before validation could name it: the id as given, or <c>input N</c>.</summary>
    public object TargetFor(int row) => string.IsNullOrWhiteSpace(DeviceId) ? $"input {row}" : DeviceId!.Trim();

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    public override string ToString() => DeviceId ?? "(no id)";
}
