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
    public SasTokenInfo? Validate(string? token, string targetResource, Func<SasTokenInfo, IEnumerable<string?>> keysFor, out string reason) =>
        Validate(token, targetResource, keysFor, SasKeyRule.IoTHub, out reason);

    /// <summary>
    /// Validates <paramref name="token"/> for <paramref name="targetResource"/> with the HMAC keyed as <paramref name="rule"/>
    /// says; returns the parsed token or null with a reason.
    /// </summary>
    public SasTokenInfo? Validate(string? token, string targetResource, Func<SasTokenInfo, IEnumerable<string?>> keysFor, SasKeyRule rule, out string reason)
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

            foreach (var keyBytes in KeyBytes(key, rule))
            {
                var expected = HMACSHA256.HashData(keyBytes, stringToSign);
                match |= givenLength == expected.Length && CryptographicOperations.FixedTimeEquals(expected, given.AsSpan(0, givenLength));
            }
        }

        if (!match)
        {
            reason = "the signature does not match";
            return null;
        }

        reason = "";
        return info;
    }

    /// <summary>The HMAC keys <paramref name="rule"/> makes of a policy key.</summary>
    private static IEnumerable<byte[]> KeyBytes(string key, SasKeyRule rule)
    {
        if (rule is SasKeyRule.IoTHub or SasKeyRule.Either)
        {
            byte[]? decoded = null;
            try
            {
                decoded = SharedAccessKeys.Decode(key);
            }
            catch (IoTHubMqttException)
            {
            }

            if (decoded is not null)
            {
                yield return decoded;
            }
        }

        if (rule is SasKeyRule.EventHubs or SasKeyRule.Either)
        {
            yield return Encoding.UTF8.GetBytes(key);
        }
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

/// <summary>
/// How a shared access signature is keyed. IoT Hub keys the HMAC with the base64-decoded policy key
/// (https://learn.microsoft.com/azure/iot-hub/authenticate-authorize-sas); Event Hubs, and so the hub's Event
/// Hub-compatible endpoint, with the key's text as given (https://learn.microsoft.com/azure/event-hubs/authenticate-shared-access-signature).
/// </summary>
internal enum SasKeyRule
{
    IoTHub,
    EventHubs,

    /// <summary>Either rule: a token for a bare host, which the hub and its Event Hubs namespace would each accept by their own rule.</summary>
    Either,
}
