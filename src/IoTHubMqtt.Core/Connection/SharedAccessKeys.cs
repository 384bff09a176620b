using System.Security.Cryptography;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Connection;

/// <summary>Base64 symmetric keys: decoding with a clear error, generation, and group-enrollment derivation.</summary>
public static class SharedAccessKeys
{
    /// <summary>Decodes a base64 key; an invalid one is an <see cref="IoTHubMqttException"/> that never repeats the key.</summary>
    public static byte[] Decode(string? key, string parameterName = "Key")
    {
        if (string.IsNullOrWhiteSpace(key))
        {
            throw new IoTHubMqttException(ErrorIds.KeyEmpty,
                $"The {parameterName} is empty.", "Pass the base64 key from the device or policy.", parameterName);
        }

        var buffer = new byte[(key.Length * 3 / 4) + 3];
        if (!Convert.TryFromBase64String(key.Trim(), buffer, out var written) || written == 0)
        {
            throw new IoTHubMqttException(ErrorIds.KeyNotBase64,
                $"The {parameterName} is not a base64 string ({key.Length} characters).",
                "Keys are base64 text as shown in the portal; check it was copied whole.", parameterName);
        }

        return buffer.AsSpan(0, written).ToArray();
    }

    /// <summary>A new random key of <paramref name="bytes"/> bytes (IoT Hub uses 32), as base64.</summary>
    public static string Generate(int bytes = 32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bytes, 16);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, 64);
        return Convert.ToBase64String(RandomNumberGenerator.GetBytes(bytes));
    }

    /// <summary>
    /// The device key of a DPS group (symmetric-key) enrollment:
    /// base64(HMAC-SHA256(base64decode(groupKey), registrationId)).
    /// </summary>
    public static string DeriveDeviceKey(string groupKey, string registrationId)
    {
        ArgumentNullException.ThrowIfNull(registrationId);
        IdentityValidator.ThrowIfInvalidRegistrationId(registrationId);
        var key = Decode(groupKey, "GroupKey");
        return Convert.ToBase64String(HMACSHA256.HashData(key, System.Text.Encoding.UTF8.GetBytes(registrationId)));
    }
}
