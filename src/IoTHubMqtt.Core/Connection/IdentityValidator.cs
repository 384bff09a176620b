using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Connection;

/// <summary>
/// Device, module and registration id rules of IoT Hub and DPS:
/// up to 128 ASCII characters, letters, digits and <c>- . + % _ # * ? ! ( ) , : = @ $ '</c>.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-identity-registry#device-identity-properties
/// </summary>
public static class IdentityValidator
{
    public const int MaxIdLength = 128;
    private const string Specials = "-.+%_#*?!(),:=@$'";

    public static bool IsValidDeviceId(string? id) => IsValid(id, Specials);

    public static bool IsValidModuleId(string? id) => IsValid(id, Specials);

    /// <summary>DPS registration ids: lowercase alphanumerics and <c>- . _ :</c>, up to 128 characters.</summary>
    public static bool IsValidRegistrationId(string? id) =>
        !string.IsNullOrEmpty(id) && id.Length <= MaxIdLength &&
        id.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.' or '_' or ':');

    public static void ThrowIfInvalidDeviceId(string? id)
    {
        if (!IsValidDeviceId(id))
        {
            throw new IoTHubMqttException(ErrorIds.InvalidDeviceId,
                $"'{Shorten(id)}' is not a valid device id: use 1 to {MaxIdLength} ASCII letters, digits or {Specials}.",
                "Choose a device id of letters, digits and - . _ : characters.", id);
        }
    }

    public static void ThrowIfInvalidModuleId(string? id)
    {
        if (!IsValidModuleId(id))
        {
            throw new IoTHubMqttException(ErrorIds.InvalidModuleId,
                $"'{Shorten(id)}' is not a valid module id: use 1 to {MaxIdLength} ASCII letters, digits or {Specials}.",
                "Choose a module id of letters, digits and - . _ : characters.", id);
        }
    }

    public static void ThrowIfInvalidRegistrationId(string? id)
    {
        if (!IsValidRegistrationId(id))
        {
            throw new IoTHubMqttException(ErrorIds.InvalidRegistrationId,
                $"'{Shorten(id)}' is not a valid registration id: use 1 to {MaxIdLength} lowercase letters, digits or - . _ : characters.",
                "DPS registration ids are lowercase; for example use the serial number in lowercase.", id);
        }
    }

    private static bool IsValid(string? id, string specials) =>
        !string.IsNullOrEmpty(id) && id.Length <= MaxIdLength &&
        id.All(c => char.IsAsciiLetterOrDigit(c) || specials.Contains(c, StringComparison.Ordinal));

    private static string Shorten(string? id) => id is null ? "" : id.Length > 64 ? id[..64] + "…" : id;
}
