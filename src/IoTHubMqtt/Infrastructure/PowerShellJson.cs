using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Infrastructure;

/// <summary>
/// Converts between PowerShell values (hashtables, PSCustomObjects, arrays, primitives) and JSON, so cmdlets take
/// hashtables where users would pass JSON and return objects like ConvertFrom-Json does.
/// </summary>
internal static class PowerShellJson
{
    public const int MaxDepth = 32;

    public static JsonNode? ToJsonNode(object? value, int depth = 0)
    {
        if (depth > MaxDepth)
        {
            throw new IoTHubMqttException(ErrorIds.JsonTooDeep,
                $"The object is nested more than {MaxDepth} levels deep (or refers to itself).", "Pass a hashtable or object with plain nested values.");
        }

        if (value is PSObject pso)
        {
            if (pso.BaseObject is PSCustomObject)
            {
                var obj = new JsonObject();
                foreach (var property in pso.Properties)
                {
                    if (property.MemberType is PSMemberTypes.NoteProperty or PSMemberTypes.Property)
                    {
                        obj[property.Name] = ToJsonNode(property.Value, depth + 1);
                    }
                }

                return obj;
            }

            value = pso.BaseObject;
        }

        switch (value)
        {
            case null:
                return null;
            case JsonNode node:
                return node.DeepClone();
            case string s:
                return JsonValue.Create(s);
            case char c:
                return JsonValue.Create(c.ToString());
            case bool b:
                return JsonValue.Create(b);
            case int or long or short or byte or sbyte or ushort or uint or ulong:
                return JsonValue.Create(Convert.ToInt64(value, CultureInfo.InvariantCulture));
            case float or double:
                var d = Convert.ToDouble(value, CultureInfo.InvariantCulture);
                if (double.IsNaN(d) || double.IsInfinity(d))
                {
                    throw new IoTHubMqttException(ErrorIds.JsonInvalidNumber, "NaN and infinity cannot be written as JSON.", null);
                }

                return JsonValue.Create(d);
            case decimal m:
                return JsonValue.Create(m);
            case DateTime dt:
                return JsonValue.Create(dt.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture));
            case DateTimeOffset dto:
                return JsonValue.Create(dto.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture));
            case Guid or Enum or Uri or TimeSpan or Version:
                return JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture));
            case IDictionary dictionary:
                var result = new JsonObject();
                foreach (DictionaryEntry entry in dictionary)
                {
                    result[Convert.ToString(entry.Key, CultureInfo.InvariantCulture) ?? string.Empty] = ToJsonNode(entry.Value, depth + 1);
                }

                return result;
            case IEnumerable sequence:
                var array = new JsonArray();
                foreach (var item in sequence)
                {
                    array.Add(ToJsonNode(item, depth + 1));
                }

                return array;
            default:
                var objectNode = new JsonObject();
                foreach (var property in PSObject.AsPSObject(value).Properties.Where(p => p.MemberType == PSMemberTypes.Property && p.IsGettable))
                {
                    objectNode[property.Name] = ToJsonNode(property.Value, depth + 1);
                }

                return objectNode;
        }
    }

    public static JsonObject ToJsonObject(object? value, string parameterName)
    {
        if (value is PSObject { BaseObject: string text } || value is string)
        {
            var json = value is PSObject p ? (string)p.BaseObject : (string)value;
            try
            {
                return JsonNode.Parse(json) as JsonObject ?? throw NotAnObject(parameterName);
            }
            catch (JsonException ex)
            {
                throw new IoTHubMqttException(ErrorIds.JsonInvalid, $"-{parameterName} is not valid JSON: {ex.Message}", "Pass a hashtable, an object or a JSON object string.", parameterName, ex);
            }
        }

        return ToJsonNode(value) as JsonObject ?? throw NotAnObject(parameterName);
    }

    public static object? ToPowerShell(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return null;
            case JsonObject obj:
                var result = new PSObject();
                foreach (var (name, child) in obj)
                {
                    result.Properties.Add(new PSNoteProperty(name, ToPowerShell(child)));
                }

                return result;
            case JsonArray array:
                return array.Select(ToPowerShell).ToArray();
            default:
                var element = node.GetValue<JsonElement>();
                return element.ValueKind switch
                {
                    JsonValueKind.String => element.GetString(),
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    JsonValueKind.Number when element.TryGetInt64(out var l) => l,
                    JsonValueKind.Number when element.TryGetDecimal(out var m) && m.Scale > 0 => (double)m,
                    JsonValueKind.Number => element.GetDouble(),
                    _ => null,
                };
        }
    }

    /// <summary>Parses JSON bytes to PowerShell values; text that is not JSON comes back as the string itself.</summary>
    public static object? ParseOrText(byte[] body)
    {
        if (body.Length == 0)
        {
            return null;
        }

        try
        {
            return ToPowerShell(JsonNode.Parse(body));
        }
        catch (JsonException)
        {
            return System.Text.Encoding.UTF8.GetString(body);
        }
    }

    private static IoTHubMqttException NotAnObject(string parameterName) =>
        new(ErrorIds.JsonNotAnObject, $"-{parameterName} must be a hashtable, an object or a JSON object.", null, parameterName);
}
