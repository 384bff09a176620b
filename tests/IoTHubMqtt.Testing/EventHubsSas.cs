using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace IoTHubMqtt.Testing;

/// <summary>
/// A shared access signature by the Event Hubs rule: HMAC-SHA256 keyed with the policy key's text as given (not
/// base64-decoded, as IoT Hub keys it), over the URL-encoded resource and the expiry.
/// See https://learn.microsoft.com/azure/event-hubs/authenticate-shared-access-signature
/// </summary>
public static class EventHubsSas
{
    public static string Create(string resource, string key, DateTimeOffset expiry, string policy)
    {
        var encoded = Uri.EscapeDataString(resource);
        var seconds = expiry.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var signature = Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(encoded + "\n" + seconds)));
        return $"SharedAccessSignature sr={encoded}&sig={Uri.EscapeDataString(signature)}&se={seconds}&skn={policy}";
    }
}
