using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service;

/// <summary>
/// Turns a hub error answer (status, <c>iothub-errorcode</c> header, body <c>{"Message":"ErrorCode:Name;text",…}</c>)
/// into an <see cref="IoTHubMqttException"/> with a stable ErrorId. Hub messages carry no secrets.
/// See https://learn.microsoft.com/azure/iot-hub/troubleshoot-error-codes
/// </summary>
internal static class ServiceErrors
{
    /// <remarks>
    /// Whether the error is transient comes from <see cref="ErrorIds"/>; the catch-all answers say it themselves: an
    /// unexpected 5xx is transient, an unexpected 4xx is not, and a gateway timeout (504) is transient except for a
    /// direct method call, where it means the device did not answer in time.
    /// </remarks>
    public static IoTHubMqttException FromResponse(HttpStatusCode status, string? errorCodeHeader, string body, string? target, string operation, bool isMethodCall = false)
    {
        var (code, message) = Parse(body);
        code = errorCodeHeader ?? code;
        var where = target is null ? "" : $" ({target})";
        var hubText = $"{operation}{where}: the hub answered {(int)status} {code ?? status.ToString()}{(message is null ? "" : ": " + message)}";
        return ((int)status, code) switch
        {
            (404, "DeviceNotOnline") => new(ErrorIds.DeviceNotOnline, hubText,
                "The device is not connected or has not subscribed to methods; start it, or pass a longer -ConnectTimeout.", target),
            (404, "DeviceNotFound") => new(ErrorIds.DeviceNotFound, hubText, "Check the device id, or create it with New-IoTHubDevice.", target),
            (404, _) => new(ErrorIds.IoTHubResourceNotFound, hubText, "Check the host name and that this hub offers the operation.", target),
            (409, _) => new(ErrorIds.DeviceAlreadyExists, hubText, "Use -Force to update the existing device, or choose another id.", target),
            (412, _) => new(ErrorIds.PreconditionFailed, hubText,
                "The object changed since its ETag was read: read it again, or leave out the ETag.", target),
            (401, _) => new(ErrorIds.IoTHubUnauthorized, hubText,
                "Check the policy key and name in the connection string (a regenerated key or a policy without the needed permission), and the clock.", target),
            (403, "DeviceMaximumQueueDepthExceeded") => new(ErrorIds.CloudMessageQueueFull, hubText,
                "The device has 50 undelivered messages: let it receive them first.", target),
            (403, _) => new(ErrorIds.IoTHubForbidden, hubText, "Check the policy's permissions and the hub's quota.", target),
            (413, _) => new(ErrorIds.MessageTooLarge, hubText, "Send a smaller payload.", target),
            (429, _) => new(ErrorIds.IoTHubThrottled, hubText, "Lower -ThrottleLimit or retry later.", target),
            (504, _) => new(ErrorIds.MethodTimedOut, hubText, "The device did not answer in time: pass a longer -Timeout, or check its handler.", target) { IsTransient = !isMethodCall },
            (400, _) => new(ErrorIds.IoTHubBadRequest, hubText, null, target),
            _ => new(ErrorIds.IoTHubRequestFailed, (int)status >= 500 ? IoTHubErrorKind.ResourceUnavailable : IoTHubErrorKind.ProtocolError, hubText, null, target)
            {
                IsTransient = (int)status >= 500,
            },
        };
    }

    internal static (string? Code, string? Message) Parse(string body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return (null, null);
        }

        try
        {
            if (JsonNode.Parse(body) is not JsonObject json)
            {
                return (null, Shorten(body));
            }

            var message = ServiceDevice.Text(json, "Message") ?? ServiceDevice.Text(json, "message");
            var exceptionMessage = ServiceDevice.Text(json, "ExceptionMessage");
            string? code = null;
            if (message is not null && message.StartsWith("ErrorCode:", StringComparison.Ordinal))
            {
                var semicolon = message.IndexOf(';', StringComparison.Ordinal);
                code = semicolon > 10 ? message[10..semicolon] : message[10..];
                message = semicolon > 0 ? message[(semicolon + 1)..] : null;
            }

            if (message is not null && message.StartsWith('{') && JsonNode.Parse(message) is JsonObject inner)
            {
                // Some hub answers nest a second JSON document in Message.
                code ??= ServiceDevice.Text(inner, "errorCode") ?? inner["errorCode"]?.ToJsonString();
                message = ServiceDevice.Text(inner, "message") ?? message;
            }

            return (code, Shorten(message ?? exceptionMessage));
        }
        catch (JsonException)
        {
            return (null, Shorten(body));
        }
    }

    private static string? Shorten(string? text) => text is null ? null : text.Length > 300 ? text[..300] + "…" : text;
}
