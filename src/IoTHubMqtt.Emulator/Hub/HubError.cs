using System.Text.Json.Nodes;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// An answer the hub gives with an error: HTTP status, the hub's six-digit error code and its name,
/// e.g. 404 / 404001 / DeviceNotFound. Thrown inside the hub logic, turned into a REST or MQTT answer at the edge.
/// </summary>
internal sealed class HubError : Exception
{
    public HubError(int status, int errorCode, string code, string message)
        : base(message)
    {
        Status = status;
        ErrorCode = errorCode;
        Code = code;
    }

    public int Status { get; }

    public int ErrorCode { get; }

    public string Code { get; }

    /// <summary>Seconds a throttled caller should wait, when this is a 429.</summary>
    public int? RetryAfterSeconds { get; init; }

    public string ToJson() => new JsonObject
    {
        ["Message"] = $"ErrorCode:{Code};{Message}",
        ["ExceptionMessage"] = "",
        ["errorCode"] = ErrorCode,
        ["trackingId"] = Guid.NewGuid().ToString("N"),
        ["timestampUtc"] = DateTime.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
    }.ToJsonString();

    public static HubError DeviceNotFound(string deviceId) => new(404, 404001, "DeviceNotFound", $"Device {deviceId} not registered.");

    public static HubError DeviceAlreadyExists(string deviceId) => new(409, 409001, "DeviceAlreadyExists", $"A device with ID '{deviceId}' is already registered.");

    public static HubError PreconditionFailed(string what) => new(412, 412002, "PreconditionFailed", $"Precondition failed: {what}.");

    public static HubError BadRequest(string message) => new(400, 400027, "ArgumentInvalid", message);

    public static HubError Unauthorized(string message) => new(401, 401002, "IotHubUnauthorizedAccess", message);

    public static HubError DeviceNotOnline(string deviceId) => new(404, 404103, "DeviceNotOnline", $"Timed out waiting for device {deviceId} to connect.");

    public static HubError GatewayTimeout(string deviceId) => new(504, 504101, "GatewayTimeoutException", $"Timed out waiting for the response from device {deviceId}.");

    public static HubError QueueFull(string deviceId) => new(403, 403004, "DeviceMaximumQueueDepthExceeded", $"The device {deviceId} has 50 undelivered cloud-to-device messages.");

    public static HubError MessageTooLarge(int limit) => new(413, 413001, "MessageTooLarge", $"The message is larger than {limit} bytes.");

    /// <summary>The change could not be stored (see the emulator's log): a 500, so nothing is acknowledged.</summary>
    public static HubError StorageFailed(IoTHubMqtt.Core.Errors.IoTHubMqttException cause) =>
        new(500, 500001, "ServerError", $"The emulator could not store the change ({cause.ErrorId}: {cause.Message})");

    public static HubError Throttled(int retryAfter) => new(429, 429001, "ThrottlingException", "The request rate is too high.") { RetryAfterSeconds = retryAfter };
}
