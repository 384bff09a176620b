using System.Collections;
using System.Management.Automation;
using System.Text;
using IoTHubMqtt.Infrastructure;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// Runs a Register-IoTHubMethod handler (a script block, <c>$_</c> being the call) and turns what it returns into the
/// method's status and JSON response: 200 and its output, or the status and payload it chose by returning exactly
/// <c>@{ Status = …; Payload = … }</c>; 500 with the message when it throws (never a stack trace), 501 without a handler.
/// </summary>
internal static class MethodHandlers
{
    /// <summary>Runs <paramref name="handler"/> for <paramref name="call"/>, sets its Status, Error and Response, and returns the response body.</summary>
    public static byte[] Invoke(ScriptBlock? handler, IoTHubMethodCall call)
    {
        byte[] response;
        if (handler is null)
        {
            call.Status = 501;
            response = Json(new Hashtable { ["message"] = $"The device has no handler for method '{call.Name}'." });
        }
        else
        {
            try
            {
                var output = handler.InvokeWithContext(null, [new PSVariable("_", call)], call);
                (call.Status, response) = ToResponse(output);
            }
            catch (Exception ex) when (ex is RuntimeException or IoTHubMqttException)
            {
                // The message only: a stack trace never leaves the device.
                call.Status = 500;
                call.Error = ex.Message;
                response = Json(new Hashtable { ["message"] = ex.Message });
            }
        }

        call.Response = Encoding.UTF8.GetString(response);
        return response;
    }

    private static (int Status, byte[] Body) ToResponse(IList<PSObject> output)
    {
        if (output.Count == 1 && TryStatusAndPayload(output[0], out var status, out var payload))
        {
            return (status, Json(payload));
        }

        object? value = output.Count switch
        {
            0 => null,
            1 => output[0],
            _ => output.ToArray(),
        };
        return (200, Json(value));
    }

    /// <summary>A handler chooses its status by returning exactly the two keys Status and Payload.</summary>
    private static bool TryStatusAndPayload(PSObject item, out int status, out object? payload)
    {
        status = 0;
        payload = null;
        if (item.BaseObject is IDictionary dictionary && dictionary.Count == 2 && dictionary.Contains("Status") && dictionary.Contains("Payload"))
        {
            payload = dictionary["Payload"];
            return LanguagePrimitives.TryConvertTo(dictionary["Status"], out status) && status is >= 100 and <= 999;
        }

        if (item.BaseObject is PSCustomObject)
        {
            var names = item.Properties.Select(p => p.Name).ToList();
            if (names.Count == 2 && names.Contains("Status", StringComparer.OrdinalIgnoreCase) && names.Contains("Payload", StringComparer.OrdinalIgnoreCase))
            {
                payload = item.Properties["Payload"].Value;
                return LanguagePrimitives.TryConvertTo(item.Properties["Status"].Value, out status) && status is >= 100 and <= 999;
            }
        }

        return false;
    }

    private static byte[] Json(object? value) => Encoding.UTF8.GetBytes(PowerShellJson.ToJsonNode(value)?.ToJsonString() ?? "null");
}
