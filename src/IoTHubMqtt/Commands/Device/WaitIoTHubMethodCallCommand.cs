using System.Collections;
using System.Management.Automation;
using System.Text;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>A direct method call the device answered.</summary>
public sealed class IoTHubMethodCall
{
    public required string DeviceId { get; init; }

    public required string Name { get; init; }

    /// <summary>The method's name again, under the name the service side's IoTHubMethodResult gives it.</summary>
    public string MethodName => Name;

    public required string RequestId { get; init; }

    /// <summary>The request payload, parsed from JSON.</summary>
    public object? Payload { get; init; }

    public int Status { get; set; }

    /// <summary>The JSON the device answered with.</summary>
    public string? Response { get; set; }

    public string? Error { get; set; }

    public DateTimeOffset ReceivedAt { get; init; }

    public TimeSpan Duration { get; set; }

    public override string ToString() => $"{Name} -> {Status}";
}

/// <summary>
/// <para type="synopsis">Waits for direct method calls and answers them with the handlers of Register-IoTHubMethod.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Wait, "IoTHubMethodCall", DefaultParameterSetName = ConnectionSet)]
[OutputType(typeof(IoTHubMethodCall))]
public sealed class WaitIoTHubMethodCallCommand : DeviceCmdlet
{
    /// <summary>Only calls of these methods count toward -Count; calls of other registered methods are still answered.</summary>
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <summary>How many calls to answer before returning.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int Count { get; set; } = 1;

    /// <summary>Seconds to wait in all; a timeout is an error (MethodCallWaitTimedOut).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int Timeout { get; set; } = 60;

    protected override void ProcessRecord()
    {
        if (Device.Methods.Length == 0)
        {
            ThrowTerminatingError(new IoTHubMqttException("NoMethodRegistered", IoTHubErrorKind.InvalidOperation,
                "No method is registered on this connection.", "Register a handler with Register-IoTHubMethod first.", Device.DeviceId));
        }

        var counted = ReceiveUntil(Count, TimeSpan.FromSeconds(Timeout), Client.ReceiveMethodRequestAsync, request =>
        {
            var call = Answer(request);
            if (Name is not null && !Name.Contains(call.Name, StringComparer.Ordinal))
            {
                return false;
            }

            WriteObject(call);
            return true;
        });
        if (counted < Count)
        {
            WriteError(new IoTHubMqttException("MethodCallWaitTimedOut", IoTHubErrorKind.Timeout,
                $"{counted} of {Count} method call(s) arrived within {Timeout} s.", "Wait longer with -Timeout, or check the method name the service calls.", Device.DeviceId));
        }
    }

    private IoTHubMethodCall Answer(MethodRequest request)
    {
        var started = DateTimeOffset.UtcNow;
        var call = new IoTHubMethodCall
        {
            DeviceId = Device.DeviceId,
            Name = request.Name,
            RequestId = request.RequestId,
            Payload = PowerShellJson.ParseOrText(request.Payload),
            ReceivedAt = request.ReceivedAt,
        };
        byte[] response;
        var handler = Device.Handler(request.Name);
        if (handler is null)
        {
            call.Status = 501;
            response = Json(new Hashtable { ["message"] = $"The device has no handler for method '{request.Name}'." });
        }
        else
        {
            try
            {
                var output = handler.InvokeWithContext(null, [new PSVariable("_", call)], call);
                (call.Status, response) = ToResponse(output);
            }
            catch (RuntimeException ex)
            {
                // The message only: a stack trace never leaves the device.
                call.Status = 500;
                call.Error = ex.Message;
                response = Json(new Hashtable { ["message"] = ex.Message });
            }
            catch (IoTHubMqttException ex)
            {
                call.Status = 500;
                call.Error = ex.Message;
                response = Json(new Hashtable { ["message"] = ex.Message });
            }
        }

        call.Response = Encoding.UTF8.GetString(response);
        Run(ct => Client.RespondToMethodAsync(request, call.Status, response, ct));
        call.Duration = DateTimeOffset.UtcNow - started;
        WriteVerbose($"Answered '{call.Name}' ({call.RequestId}) with {call.Status}.");
        return call;
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
