using System.Security.Cryptography;
using System.Text;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// Checks shared access signatures as the hub does: the token's resource must be a prefix of the resource being
/// accessed, the signature must match one of the key's two values (constant-time compare), and the expiry may
/// be past by at most the allowed clock skew.
/// </summary>
internal sealed class SasAuthenticator(TimeSpan clockSkew, Func<DateTimeOffset>? clock = null)
{
    public DateTimeOffset Now => clock?.Invoke() ?? DateTimeOffset.UtcNow;

    /// <summary>Validates <paramref name="token"/> for <paramref name="targetResource"/>; returns the parsed token or null with a reason.</summary>
    public SasTokenInfo? Validate(string? token, string targetResource, Func<SasTokenInfo, IEnumerable<string?>> keysFor, out string reason)
    {
        SasTokenInfo info;
        try
        {
            info = SasToken.Parse(token ?? "");
        }
        catch (IoTHubMqttException)
        {
            reason = "the token is malformed";
            return null;
        }

        if (!IsResourcePrefix(info.Resource, targetResource))
        {
            reason = "the token's resource does not match";
            return null;
        }

        if (info.Expiry + clockSkew <= Now)
        {
            reason = "the token has expired";
            return null;
        }

        var given = new byte[64];
        if (!Convert.TryFromBase64String(info.Signature, given, out var givenLength))
        {
            reason = "the signature is not base64";
            return null;
        }

        var stringToSign = Encoding.UTF8.GetBytes(info.EncodedResource + "\n" + info.ExpiryUnixSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var match = false;
        foreach (var key in keysFor(info))
        {
            if (key is null)
            {
                continue;
            }

            byte[] keyBytes;
            try
            {
                keyBytes = SharedAccessKeys.Decode(key);
            }
            catch (IoTHubMqttException)
            {
                continue;
            }

            var expected = HMACSHA256.HashData(keyBytes, stringToSign);
            match |= givenLength == expected.Length && CryptographicOperations.FixedTimeEquals(expected, given.AsSpan(0, givenLength));
        }

        if (!match)
        {
            reason = "the signature does not match";
            return null;
        }

        reason = "";
        return info;
    }

    /// <summary>True when <paramref name="tokenResource"/> names <paramref name="target"/> or a parent of it (host case-insensitive, segment boundaries).</summary>
    public static bool IsResourcePrefix(string tokenResource, string target)
    {
        static string Normalize(string r)
        {
            var s = r.Trim();
            var scheme = s.IndexOf("://", StringComparison.Ordinal);
            if (scheme >= 0)
            {
                s = s[(scheme + 3)..];
            }

            return s.TrimEnd('/');
        }

        var token = Normalize(tokenResource);
        var full = Normalize(target);
        var tokenSlash = token.IndexOf('/', StringComparison.Ordinal);
        var fullSlash = full.IndexOf('/', StringComparison.Ordinal);
        var tokenHost = tokenSlash < 0 ? token : token[..tokenSlash];
        var fullHost = fullSlash < 0 ? full : full[..fullSlash];
        if (!string.Equals(tokenHost, fullHost, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var tokenPath = tokenSlash < 0 ? "" : token[tokenSlash..];
        var fullPath = fullSlash < 0 ? "" : full[fullSlash..];
        return tokenPath.Length == 0 || fullPath == tokenPath || fullPath.StartsWith(tokenPath + "/", StringComparison.Ordinal);
    }
}
