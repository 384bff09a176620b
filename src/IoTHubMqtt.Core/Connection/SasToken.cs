using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Connection;

/// <summary>
/// Shared access signatures: <c>SharedAccessSignature sr={enc(resource)}&amp;sig={enc(sig)}&amp;se={expiry}[&amp;skn={policy}]</c>,
/// sig = base64(HMAC-SHA256(key, enc(resource) + "\n" + expiry)).
/// See https://learn.microsoft.com/azure/iot-hub/authenticate-authorize-sas
/// </summary>
public static class SasToken
{
    public const string Prefix = "SharedAccessSignature ";

    /// <summary>Default lifetime used by the cmdlets: one hour.</summary>
    public static readonly TimeSpan DefaultTimeToLive = TimeSpan.FromHours(1);

    /// <summary>Creates a token; the expiry must be in the future relative to <paramref name="now"/>.</summary>
    public static string Create(string resourceUri, string base64Key, DateTimeOffset expiry, string? policyName = null, DateTimeOffset? now = null)
    {
        var key = SharedAccessKeys.Decode(base64Key);
        return Create(resourceUri, key, expiry, policyName, now);
    }

    public static string Create(string resourceUri, ReadOnlySpan<byte> key, DateTimeOffset expiry, string? policyName = null, DateTimeOffset? now = null)
    {
        if (string.IsNullOrWhiteSpace(resourceUri))
        {
            throw new IoTHubMqttException(ErrorIds.ResourceUriEmpty,
                "The resource URI is empty.", "Pass a resource such as 'myhub.azure-devices.net/devices/mydevice'.", "ResourceUri");
        }

        if (resourceUri.Any(char.IsWhiteSpace))
        {
            throw new IoTHubMqttException(ErrorIds.ResourceUriInvalid,
                "The resource URI contains white space.", "Pass a resource such as 'myhub.azure-devices.net/devices/mydevice'.", "ResourceUri");
        }

        if (policyName is not null && (policyName.Length == 0 || policyName.Any(char.IsWhiteSpace)))
        {
            throw new IoTHubMqttException(ErrorIds.KeyNameInvalid,
                "The policy (key) name is empty or contains white space.", "Pass a policy name such as 'iothubowner', or leave it out for device keys.", "KeyName");
        }

        var current = now ?? DateTimeOffset.UtcNow;
        if (expiry <= current)
        {
            throw new IoTHubMqttException(ErrorIds.ExpiryInPast,
                $"The expiry {expiry.UtcDateTime:u} is not in the future.", "Pass a later -Expiry or a positive -TimeToLive.", "Expiry");
        }

        var seconds = expiry.ToUnixTimeSeconds();
        return CreateAt(resourceUri, key, seconds, policyName);
    }

    /// <summary>Creates a token for an absolute Unix expiry with no clock check (test vectors, devices with their own clock).</summary>
    public static string CreateAt(string resourceUri, ReadOnlySpan<byte> key, long unixExpirySeconds, string? policyName = null)
    {
        var encodedResource = WebUtility.UrlEncode(resourceUri);
        var expiryText = unixExpirySeconds.ToString(CultureInfo.InvariantCulture);
        var signature = Sign(key, encodedResource + "\n" + expiryText);
        var token = new StringBuilder(Prefix)
            .Append("sr=").Append(encodedResource)
            .Append("&sig=").Append(WebUtility.UrlEncode(signature))
            .Append("&se=").Append(expiryText);
        if (policyName is not null)
        {
            token.Append("&skn=").Append(WebUtility.UrlEncode(policyName));
        }

        return token.ToString();
    }

    /// <summary>base64(HMAC-SHA256(key, UTF-8(stringToSign))).</summary>
    public static string Sign(ReadOnlySpan<byte> key, string stringToSign) =>
        Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));

    /// <summary>Creates a token valid for <paramref name="timeToLive"/> from now.</summary>
    public static string CreateForTimeToLive(string resourceUri, string base64Key, TimeSpan timeToLive, string? policyName = null, DateTimeOffset? now = null)
    {
        if (timeToLive <= TimeSpan.Zero)
        {
            throw new IoTHubMqttException(ErrorIds.TimeToLiveNotPositive,
                "The time to live must be greater than zero.", "Pass a positive -TimeToLive such as (New-TimeSpan -Hours 1).", "TimeToLive");
        }

        var current = now ?? DateTimeOffset.UtcNow;
        DateTimeOffset expiry;
        try
        {
            expiry = current + timeToLive;
        }
        catch (ArgumentOutOfRangeException)
        {
            throw new IoTHubMqttException(ErrorIds.TimeToLiveTooLarge,
                "The time to live goes past the largest date.", "Pass a shorter -TimeToLive.", "TimeToLive");
        }

        return Create(resourceUri, base64Key, expiry, policyName, current);
    }

    /// <summary>Parses a token's fields (never its signature into messages). Throws on a malformed token.</summary>
    public static SasTokenInfo Parse(string token)
    {
        static IoTHubMqttException Bad(string why) => new(ErrorIds.SasTokenMalformed,
            $"The shared access signature is malformed: {why}.", "Create a new token with New-IoTHubSasToken.", "SharedAccessSignature");

        if (string.IsNullOrWhiteSpace(token) || !token.StartsWith(Prefix, StringComparison.Ordinal))
        {
            throw Bad("it does not start with 'SharedAccessSignature '");
        }

        string? sr = null, sig = null, se = null, skn = null;
        foreach (var pair in token[Prefix.Length..].Split('&'))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw Bad("a field is not name=value");
            }

            var name = pair[..eq];
            var value = pair[(eq + 1)..];
            switch (name)
            {
                case "sr" when sr is null: sr = value; break;
                case "sig" when sig is null: sig = value; break;
                case "se" when se is null: se = value; break;
                case "skn" when skn is null: skn = value; break;
                case "sr" or "sig" or "se" or "skn": throw Bad($"field '{name}' appears twice");
                default: throw Bad($"unknown field '{(name.Length <= 8 && name.All(char.IsAsciiLetter) ? name : "?")}'");
            }
        }

        if (sr is null || sig is null || se is null)
        {
            throw Bad("it needs sr, sig and se");
        }

        if (!long.TryParse(se, NumberStyles.None, CultureInfo.InvariantCulture, out var expiry))
        {
            throw Bad("se is not a number of seconds");
        }

        return new SasTokenInfo(sr, WebUtility.UrlDecode(sr), WebUtility.UrlDecode(sig), expiry, skn is null ? null : WebUtility.UrlDecode(skn));
    }
}

/// <summary>The fields of a SAS token. <see cref="Signature"/> is secret material; <see cref="ToString"/> leaves it out.</summary>
public sealed record SasTokenInfo(string EncodedResource, string Resource, string Signature, long ExpiryUnixSeconds, string? PolicyName)
{
    public DateTimeOffset Expiry => DateTimeOffset.FromUnixTimeSeconds(ExpiryUnixSeconds);

    public override string ToString() => $"SAS for {Resource} until {Expiry.UtcDateTime:u}{(PolicyName is null ? "" : $" ({PolicyName})")}";
}
