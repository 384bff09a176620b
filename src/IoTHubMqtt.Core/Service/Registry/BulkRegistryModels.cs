using System.Globalization;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service.Registry;

/// <summary>
/// What the registry does with one device of a bulk call or an import job (the <c>importMode</c> of an
/// ExportImportDevice). Bulk calls take Create, Update, UpdateIfMatchETag, Delete and DeleteIfMatchETag; import jobs also
/// CreateOrUpdate and CreateOrUpdateIfMatchETag.
/// See https://learn.microsoft.com/rest/api/iothub/service/bulk-registry/update-registry and
/// https://learn.microsoft.com/azure/iot-hub/iot-hub-bulk-identity-mgmt#import-devices
/// </summary>
public enum RegistryImportMode
{
    Create,
    Update,
    UpdateIfMatchETag,
    Delete,
    DeleteIfMatchETag,
    CreateOrUpdate,
    CreateOrUpdateIfMatchETag,
}

/// <summary>One device of a bulk registry call or an import file.</summary>
public sealed record RegistryOperation(RegistryImportMode Mode, DeviceSpec Device)
{
    /// <summary>The device keys to send when the spec has none (a create that should carry known keys).</summary>
    public (string Primary, string Secondary)? GeneratedKeys { get; init; }

    /// <summary>Desired properties for the twin (import files).</summary>
    public JsonObject? DesiredProperties { get; init; }
}

/// <summary>The hub's answer to a bulk registry call: whether every device succeeded, and what failed per device.</summary>
public sealed record BulkRegistryResult(bool IsSuccessful, IReadOnlyList<DeviceRegistryError> Errors, IReadOnlyList<DeviceRegistryWarning> Warnings);

/// <summary>One device the hub could not process: its error code name (e.g. DeviceAlreadyExists) and text.</summary>
public sealed record DeviceRegistryError(string DeviceId, string ErrorCode, string? ErrorStatus, string? Operation, string? ModuleId = null)
{
    /// <summary>The hub's six-digit code when it is one of the documented registry codes, else 0.</summary>
    public int NumericCode => HubErrorCodes.NumberOf(ErrorCode);

    /// <summary>
    /// An exception for this device with a stable ErrorId: the hub's code where the module already uses it
    /// (DeviceAlreadyExists, DeviceNotFound, PreconditionFailed, DeviceDefinedMultipleTimes…), RegistryOperationFailed otherwise.
    /// The message names the hub's code and text.
    /// </summary>
    public IoTHubMqttException ToException(string operation)
    {
        var (errorId, action) = ErrorCode switch
        {
            "DeviceAlreadyExists" => (ErrorIds.DeviceAlreadyExists, "Use -Force to update the existing device, or choose another id."),
            "DeviceNotFound" => (ErrorIds.DeviceNotFound, "Check the device id."),
            "PreconditionFailed" or "EtagDoesNotMatch" => (ErrorIds.PreconditionFailed, "The device changed since its ETag was read: read it again, or leave out the ETag."),
            "DeviceDefinedMultipleTimes" => (ErrorIds.DeviceDefinedMultipleTimes, "Give each device once."),
            "ThrottlingException" or "ThrottleBacklogLimitExceeded" or "ThrottlingBacklogTimeout" => (ErrorIds.IoTHubThrottled, "Run it again later, or use Import-IoTHubDevice for large fleets."),
            "IotHubQuotaExceeded" or "TooManyDevices" => (ErrorIds.IoTHubQuotaExceeded, "The hub holds as many devices as it may: remove some, or use another hub."),
            _ => (ErrorIds.RegistryOperationFailed, null),
        };
        var code = NumericCode == 0 ? ErrorCode : $"{ErrorCode} ({NumericCode.ToString(CultureInfo.InvariantCulture)})";
        return new HubDeviceException(errorId, $"{operation} ({DeviceId}): the hub answered {code}{(string.IsNullOrEmpty(ErrorStatus) ? "" : ": " + ErrorStatus)}", action, DeviceId, ErrorCode);
    }
}

/// <summary>A warning the hub gave for one device (e.g. DeviceRegisteredWithoutTwin).</summary>
public sealed record DeviceRegistryWarning(string DeviceId, string WarningCode, string? WarningStatus);

/// <summary>A per-device failure the hub reported, with the hub's own error code name.</summary>
public sealed class HubDeviceException(string errorId, string message, string? recommendedAction, string deviceId, string hubErrorCode)
    : IoTHubMqttException(errorId, message, recommendedAction, deviceId)
{
    /// <summary>The hub's error code name for this device, e.g. DeviceAlreadyExists or ArgumentInvalid.</summary>
    public string HubErrorCode { get; } = hubErrorCode;
}

/// <summary>
/// The registry and job error codes the hub documents (name ↔ six-digit number), for answers that carry only one of them.
/// See https://learn.microsoft.com/azure/iot-hub/troubleshoot-error-codes
/// </summary>
public static class HubErrorCodes
{
    private static readonly Dictionary<string, int> Numbers = new(StringComparer.Ordinal)
    {
        ["InvalidOperation"] = 400003,
        ["ArgumentInvalid"] = 400004,
        ["ArgumentNull"] = 400005,
        ["IotHubFormatError"] = 400006,
        ["BlobContainerValidationError"] = 400008,
        ["DeviceDefinedMultipleTimes"] = 400011,
        ["DeserializationError"] = 400012,
        ["BulkRegistryOperationFailure"] = 400013,
        ["EtagDoesNotMatch"] = 400023,
        ["IotHubUnauthorizedAccess"] = 401002,
        ["IotHubQuotaExceeded"] = 403002,
        ["JobQuotaExceeded"] = 403003,
        ["OperationNotAvailableInCurrentTier"] = 403010,
        ["DeviceNotFound"] = 404001,
        ["JobNotFound"] = 404002,
        ["ModuleNotFound"] = 404010,
        ["DeviceAlreadyExists"] = 409001,
        ["PreconditionFailed"] = 412001,
        ["TooManyDevices"] = 413002,
        ["ThrottlingException"] = 429001,
        ["ThrottleBacklogLimitExceeded"] = 429002,
        ["ThrottlingBacklogTimeout"] = 429003,
        ["ThrottlingMaxActiveJobCountExceeded"] = 429004,
        ["ServerError"] = 500001,
    };

    public static int NumberOf(string? name) => name is not null && Numbers.TryGetValue(name, out var number) ? number : 0;

    public static string? NameOf(int number) => Numbers.FirstOrDefault(p => p.Value == number).Key;

    /// <summary>Reads an <c>errorCode</c> field that is a name ("DeviceNotFound") or a number (404001).</summary>
    internal static string Read(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var name) => int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? NameOf(n) ?? name : name,
        JsonValue v when v.TryGetValue<int>(out var number) => NameOf(number) ?? number.ToString(CultureInfo.InvariantCulture),
        JsonValue v when v.TryGetValue<long>(out var big) => big.ToString(CultureInfo.InvariantCulture),
        _ => "Unknown",
    };
}
