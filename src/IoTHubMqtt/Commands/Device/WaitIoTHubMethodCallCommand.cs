using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

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
            ThrowTerminatingError(new IoTHubMqttException(ErrorIds.NoMethodRegistered,
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
            WriteError(new IoTHubMqttException(ErrorIds.MethodCallWaitTimedOut,
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
        var response = MethodHandlers.Invoke(Device.Handler(request.Name), call);
        Run(ct => Client.RespondToMethodAsync(request, call.Status, response, ct));
        call.Duration = DateTimeOffset.UtcNow - started;
        WriteVerbose($"Answered '{call.Name}' ({call.RequestId}) with {call.Status}.");
        return call;
    }
}
