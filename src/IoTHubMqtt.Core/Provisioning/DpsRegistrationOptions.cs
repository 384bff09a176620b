using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Provisioning;

/// <summary>One DPS registration with a symmetric key: the enrollment's own key, or a group key the device key is derived from.</summary>
public sealed class DpsRegistrationOptions
{
    public const string GlobalEndpoint = "global.azure-devices-provisioning.net";

    public required string IdScope { get; init; }

    /// <summary>The registration id (lowercase letters, digits, - . _ :).</summary>
    public required string RegistrationId { get; init; }

    /// <summary>The device's own key (individual enrollment). Secret.</summary>
    public string? SymmetricKey { get; init; }

    /// <summary>The enrollment group's key; the device key is HMAC-SHA256(groupKey, registrationId). Secret.</summary>
    public string? GroupKey { get; init; }

    public string ProvisioningHost { get; init; } = GlobalEndpoint;

    public int Port { get; init; } = 8883;

    public string? CaCertificatePath { get; init; }

    public bool UseSystemTrustStore { get; init; } = true;

    /// <summary>Custom data sent with the registration (the <c>payload</c> of the request), or null.</summary>
    public JsonNode? Payload { get; init; }

    /// <summary>Time for the whole registration: connect, register and polling.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    public Action<string>? Log { get; init; }

    /// <summary>The clock for the token's expiry, retry-after waits and the timeout; tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// A gate shared by registrations that run together (one Register-IoTHubDevice call): when DPS throttles one (429 and
    /// retry-after), the others wait too before their next request instead of each meeting its own 429. Null: none.
    /// </summary>
    public Service.ThrottleGate? Pacing { get; init; }

    /// <summary>The registration id of input row <paramref name="row"/>, trimmed; a blank one is RegistrationIdMissing (target <c>input N</c>).</summary>
    public static string RegistrationIdOf(string? value, int row) =>
        value?.Trim() is { Length: > 0 } id ? id : throw new IoTHubMqttException(ErrorIds.RegistrationIdMissing,
            $"Input {row} has no registration id.", "Give every row a RegistrationId (or DeviceId) value.", $"input {row}");

    /// <summary>Validates the options and returns the key the device signs with (secret).</summary>
    public string DeviceKey()
    {
        IdentityValidator.ThrowIfInvalidRegistrationId(RegistrationId);
        if (string.IsNullOrWhiteSpace(IdScope) || IdScope.Any(c => !char.IsAsciiLetterOrDigit(c)))
        {
            throw new IoTHubMqttException(ErrorIds.InvalidIdScope,
                $"'{IdScope}' is not a DPS ID scope (letters and digits, such as 0ne00ABC123).", "Copy the ID scope from the DPS overview page.", IdScope);
        }

        if ((SymmetricKey is null) == (GroupKey is null))
        {
            throw new IoTHubMqttException(ErrorIds.ProvisioningKeyRequired,
                "Pass either the device's symmetric key (individual enrollment) or the group key (group enrollment).", null, RegistrationId);
        }

        if (GroupKey is not null)
        {
            return SharedAccessKeys.DeriveDeviceKey(GroupKey, RegistrationId);
        }

        SharedAccessKeys.Decode(SymmetricKey, "SymmetricKey");
        return SymmetricKey!;
    }
}

/// <summary>The outcome of a DPS registration. <see cref="DeviceKey"/> and <see cref="ConnectionString"/> are secret.</summary>
public sealed record DpsRegistrationResult(string RegistrationId, string Status, string? AssignedHub, string? DeviceId, string? Substatus, string? ErrorMessage, string DeviceKey)
{
    public bool IsAssigned => Status == "assigned";

    /// <summary>A device connection string for the assigned hub, or null when not assigned.</summary>
    public string? ConnectionString => IsAssigned && AssignedHub is not null && DeviceId is not null
        ? IoTHubConnectionString.ForDevice(AssignedHub, DeviceId, DeviceKey).ToConnectionString()
        : null;

    public override string ToString() => $"{RegistrationId}: {Status}{(AssignedHub is null ? "" : $" to {AssignedHub}/{DeviceId}")}";
}
