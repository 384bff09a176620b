using System.Management.Automation;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// <para type="synopsis">Registers a script block that answers a direct method.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Register, "IoTHubMethod", DefaultParameterSetName = ConnectionSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(IoTHubDeviceConnection))]
public sealed class RegisterIoTHubMethodCommand : DeviceCmdlet
{
    /// <summary>The method name (case-sensitive).</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    /// <summary>
    /// The handler. It gets the call ($_ and its first argument: Name, Payload, RequestId) and its output becomes the JSON
    /// response with status 200; output @{ Status = 400; Payload = … } to choose the status; a thrown error answers 500.
    /// </summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNull]
    public ScriptBlock? ScriptBlock { get; set; }

    /// <summary>Return the connection.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        if (!ShouldProcess(Device.DeviceId, $"Register method '{Name}'"))
        {
            return;
        }

        Device.SetHandler(Name, ScriptBlock!);
        WriteVerbose($"Method '{Name}' registered on {Device.DeviceId}; calls are answered while Wait-IoTHubMethodCall runs.");
        if (PassThru)
        {
            WriteObject(Device);
        }
    }
}
