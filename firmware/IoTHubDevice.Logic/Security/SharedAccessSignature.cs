using System;
using System.Text;

namespace IoTHubDevice.Logic.Security
{
    /// <summary>
    /// SAS tokens: <c>SharedAccessSignature sr={enc(resource)}&amp;sig={enc(sig)}&amp;se={expiry}[&amp;skn={policy}]</c>,
    /// sig = base64(HMAC-SHA256(key, enc(resource) + "\n" + expiry)).
    /// See https://learn.microsoft.com/azure/iot-hub/authenticate-authorize-sas
    /// </summary>
    public static class SharedAccessSignature
    {
        public const string Prefix = "SharedAccessSignature ";

        /// <summary>base64(HMAC-SHA256(key, UTF-8(stringToSign))).</summary>
        public static string Sign(IHmacSha256 hmac, byte[] key, string stringToSign)
        {
            return Convert.ToBase64String(hmac.ComputeHash(key, Encoding.UTF8.GetBytes(stringToSign)));
        }

        /// <summary>Creates a token for <paramref name="resourceUri"/> that expires at Unix time <paramref name="expiry"/>.</summary>
        public static string Create(IHmacSha256 hmac, string resourceUri, byte[] key, long expiry, string policyName)
        {
            var encodedResource = UrlEncoding.Encode(resourceUri);
            var expiryText = expiry.ToString();
            var signature = Sign(hmac, key, encodedResource + "\n" + expiryText);
            var token = Prefix + "sr=" + encodedResource + "&sig=" + UrlEncoding.Encode(signature) + "&se=" + expiryText;
            if (policyName != null)
            {
                token += "&skn=" + UrlEncoding.Encode(policyName);
            }

            return token;
        }

        /// <summary>The DPS group-enrollment device key: base64(HMAC-SHA256(groupKey, registrationId)).</summary>
        public static string DeriveDeviceKey(IHmacSha256 hmac, byte[] groupKey, string registrationId)
        {
            return Sign(hmac, groupKey, registrationId);
        }
    }
}
