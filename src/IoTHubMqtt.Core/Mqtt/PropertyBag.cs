using System.Net;
using System.Text;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// The URL-encoded <c>k1=v1&amp;k2=v2</c> property bag at the end of IoT Hub telemetry and C2D topics.
/// System properties use names starting with <c>$.</c> (the <c>$</c> may arrive as <c>%24</c>).
/// See https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub#sending-device-to-cloud-messages
/// </summary>
public static class PropertyBag
{
    public const string MessageId = "$.mid";
    public const string CorrelationId = "$.cid";
    public const string UserId = "$.uid";
    public const string ContentType = "$.ct";
    public const string ContentEncoding = "$.ce";
    public const string To = "$.to";
    public const string ExpiryTime = "$.exp";
    public const string CreationTime = "$.ctime";

    /// <summary>Encodes ordered pairs; a null value is written as a bare name (<c>k</c>), as the hub does for empty properties.</summary>
    public static string Encode(IEnumerable<KeyValuePair<string, string?>> properties)
    {
        var text = new StringBuilder();
        foreach (var (name, value) in properties)
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new ArgumentException("A property name is empty.", nameof(properties));
            }

            if (text.Length > 0)
            {
                text.Append('&');
            }

            text.Append(EncodeComponent(name));
            if (value is not null)
            {
                text.Append('=').Append(EncodeComponent(value));
            }
        }

        return text.ToString();
    }

    /// <summary>Decodes a property bag; later duplicates win. <c>%24.</c> names are normalised to <c>$.</c>.</summary>
    public static Dictionary<string, string?> Decode(string? bag)
    {
        var result = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(bag))
        {
            return result;
        }

        if (bag[0] == '?')
        {
            bag = bag[1..];
        }

        foreach (var pair in bag.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString((eq < 0 ? pair : pair[..eq]).Replace('+', ' '));
            var value = eq < 0 ? null : Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' '));
            if (name.Length > 0)
            {
                result[name] = value;
            }
        }

        return result;
    }

    /// <summary>Percent-encodes everything but RFC 3986 unreserved characters, and keeps <c>$</c> of system names readable.</summary>
    public static string EncodeComponent(string value) =>
        value.StartsWith("$.", StringComparison.Ordinal) ? "$." + Uri.EscapeDataString(value[2..]) : Uri.EscapeDataString(value);

    internal static string UrlEncode(string value) => WebUtility.UrlEncode(value);
}
