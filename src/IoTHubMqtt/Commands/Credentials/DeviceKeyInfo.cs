using System.Security.Cryptography;
using System.Text;

namespace IoTHubMqtt.Commands.Credentials;

/// <summary>
/// A device key with the registration id it was derived for. The default view shows a short fingerprint,
/// never the key; read <see cref="DeviceKey"/> to use it.
/// </summary>
public sealed class DeviceKeyInfo(string? registrationId, string deviceKey)
{
    public string? RegistrationId { get; } = registrationId;

    /// <summary>The base64 key. Secret.</summary>
    public string DeviceKey { get; } = deviceKey;

    /// <summary>First 8 hex digits of SHA-256 of the key: enough to compare keys without showing them.</summary>
    public string Fingerprint { get; } = Convert.ToHexString(SHA256.HashData(Encoding.ASCII.GetBytes(deviceKey)))[..8].ToLowerInvariant();

    public override string ToString() => $"{RegistrationId ?? "(random)"} key {Fingerprint}";
}
