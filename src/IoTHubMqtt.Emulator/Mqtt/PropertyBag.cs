using System.Text;
using DeviceBag = IoTHubMqtt.Core.Mqtt.PropertyBag;

namespace IoTHubMqtt.Emulator.Mqtt;

/// <summary>
/// The hub's side of the URL-encoded <c>k1=v1&amp;k2=v2</c> property bag at the end of IoT Hub message topics, with
/// system properties named <c>$.mid</c>, <c>$.cid</c>, … (the <c>$</c> may arrive as <c>%24</c>). The names are
/// Core's (<see cref="DeviceBag"/>, what the device client writes); the parsing stays the hub's own because it is
/// stricter: a malformed bag (a property with an empty name) closes the device's connection instead of being skipped,
/// a bare name is an empty value, and system properties are returned under their AMQP names.
/// See https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub#sending-device-to-cloud-messages
/// </summary>
internal static class PropertyBag
{
    private static readonly Dictionary<string, string> SystemNames = new(StringComparer.Ordinal)
    {
        [DeviceBag.MessageId] = "message-id",
        [DeviceBag.CorrelationId] = "correlation-id",
        [DeviceBag.UserId] = "user-id",
        [DeviceBag.ContentType] = "content-type",
        [DeviceBag.ContentEncoding] = "content-encoding",
        [DeviceBag.To] = "to",
        [DeviceBag.ExpiryTime] = "absolute-expiry-time",
        [DeviceBag.CreationTime] = "iothub-creation-time-utc",
        ["$.ifid"] = "iothub-interface-id",
        ["$.mdid"] = "dt-dataschema",
        ["$.sub"] = "dt-subject",
    };

    /// <summary>Splits a bag into application and system properties (system ones by their AMQP names). Returns false when malformed.</summary>
    public static bool TryParse(string bag, out Dictionary<string, string> application, out Dictionary<string, string> system)
    {
        application = new Dictionary<string, string>(StringComparer.Ordinal);
        system = new Dictionary<string, string>(StringComparer.Ordinal);
        if (bag.Length == 0)
        {
            return true;
        }

        foreach (var pair in bag.Split('&'))
        {
            if (pair.Length == 0)
            {
                continue;
            }

            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            string name, value;
            try
            {
                name = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]);
                value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
            }
            catch (UriFormatException)
            {
                return false;
            }

            if (name.Length == 0)
            {
                return false;
            }

            if (name.StartsWith("$.", StringComparison.Ordinal))
            {
                system[SystemNames.GetValueOrDefault(name, name)] = value;
            }
            else
            {
                application[name] = value;
            }
        }

        return true;
    }

    /// <summary>Builds a bag: system properties first (as <c>%24.name</c>), then application properties.</summary>
    public static string Build(IEnumerable<KeyValuePair<string, string?>> system, IEnumerable<KeyValuePair<string, string>> application)
    {
        var sb = new StringBuilder();
        foreach (var (name, value) in system)
        {
            if (value is null)
            {
                continue;
            }

            Append(sb, "%24." + name, value);
        }

        foreach (var (name, value) in application)
        {
            Append(sb, Uri.EscapeDataString(name), value);
        }

        return sb.ToString();

        static void Append(StringBuilder sb, string encodedName, string value)
        {
            if (sb.Length > 0)
            {
                sb.Append('&');
            }

            sb.Append(encodedName).Append('=').Append(Uri.EscapeDataString(value));
        }
    }

    /// <summary>Reads one parameter (e.g. <c>$rid</c>) from the query part of a topic such as <c>…/?$rid=1</c>.</summary>
    public static string? QueryValue(string topic, string name)
    {
        var q = topic.IndexOf('?', StringComparison.Ordinal);
        if (q < 0)
        {
            return null;
        }

        foreach (var pair in topic[(q + 1)..].Split('&'))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? pair : pair[..eq];
            string decodedKey;
            try
            {
                decodedKey = Uri.UnescapeDataString(key);
            }
            catch (UriFormatException)
            {
                continue;
            }

            if (decodedKey == name)
            {
                try
                {
                    return eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
                }
                catch (UriFormatException)
                {
                    return null;
                }
            }
        }

        return null;
    }
}
