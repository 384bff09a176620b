using System.Globalization;
using System.Management.Automation;
using System.Net;
using System.Security;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service.Registry;

namespace IoTHubMqtt.Infrastructure;

/// <summary>
/// Reads a device from any pipeline object by property name, the way New-IoTHubDevice binds its parameters: DeviceId (or
/// Id, SerialNumber), Status, AuthenticationType, PrimaryKey, SecondaryKey (strings or SecureStrings), PrimaryThumbprint,
/// SecondaryThumbprint, Tags (or Tag: a hashtable, an object or JSON text), ETag. Works for CSV rows, hashtables and the
/// module's own device objects.
/// </summary>
internal static class DeviceInputReader
{
    public static DeviceInput Read(object? item)
    {
        var pso = item as PSObject ?? PSObject.AsPSObject(item ?? new object());
        object? Value(params string[] names)
        {
            foreach (var name in names)
            {
                if (pso.BaseObject is System.Collections.IDictionary dictionary)
                {
                    foreach (System.Collections.DictionaryEntry entry in dictionary)
                    {
                        if (string.Equals(Convert.ToString(entry.Key, CultureInfo.InvariantCulture), name, StringComparison.OrdinalIgnoreCase))
                        {
                            return entry.Value is PSObject p ? p.BaseObject : entry.Value;
                        }
                    }
                }
                else if (pso.Properties[name] is { } property && property.IsGettable)
                {
                    return property.Value is PSObject p ? p.BaseObject : property.Value;
                }
            }

            return null;
        }

        string? Text(params string[] names) => Value(names) switch
        {
            null => null,
            SecureString secure => new NetworkCredential(string.Empty, secure).Password,
            var v => Convert.ToString(v, CultureInfo.InvariantCulture),
        };

        JsonNode? tags;
        try
        {
            tags = PowerShellJson.ToJsonNode(Value("Tags", "Tag"));
        }
        catch (IoTHubMqttException)
        {
            tags = new JsonArray(); // not a JSON object: the core names the row with InvalidTags
        }

        return new DeviceInput
        {
            DeviceId = Text("DeviceId", "Id", "SerialNumber"),
            Status = Text("Status"),
            AuthenticationType = Text("AuthenticationType"),
            PrimaryKey = Text("PrimaryKey"),
            SecondaryKey = Text("SecondaryKey"),
            PrimaryThumbprint = Text("PrimaryThumbprint"),
            SecondaryThumbprint = Text("SecondaryThumbprint"),
            Tags = tags,
            ETag = Text("ETag"),
        };
    }
}
