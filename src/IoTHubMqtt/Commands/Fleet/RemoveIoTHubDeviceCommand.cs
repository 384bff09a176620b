using System.Management.Automation;
using IoTHubMqtt.Completion;
using IoTHubMqtt.Core.Service.Registry;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Removes devices from the hub's registry, in bulk calls of up to 100.</para>
/// </summary>
[Cmdlet(VerbsCommon.Remove, "IoTHubDevice", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(IoTHubDeviceRemoval))]
public sealed class RemoveIoTHubDeviceCommand : RegistryWriterCmdlet
{
    /// <summary>The device to remove; from the pipeline by value or by property name (a device from Get-IoTHubDevice).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DeviceIdCompleter))]
    public string DeviceId { get; set; } = string.Empty;

    /// <summary>Remove only if the device has not changed since this ETag was read (else PreconditionFailed).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowNull]
    [AllowEmptyString]
    public string? ETag { get; set; }

    /// <summary>Remove without asking and whatever its ETag.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Write one result a device: Removed, or Absent when it was not registered.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private protected override (int Id, string Activity, string Verb) Progress => (4, "Remove-IoTHubDevice", "removed");

    private protected override DeviceRegistryWriterOptions WriterOptions() =>
        new() { Mode = RegistryWriteMode.Remove, IgnoreETags = Force, MaxParallelCalls = ThrottleLimit };

    protected override void ProcessRecord()
    {
        // -Force skips the confirmation (ConfirmImpact is High); -WhatIf still only reports.
        var whatIf = MyInvocation.BoundParameters.ContainsKey("WhatIf");
        Add(new DeviceInput { DeviceId = DeviceId, ETag = ETag }, id => (Force && !whatIf) || ShouldProcess(id, "Remove device"));
    }

    private protected override void WriteOutcome(DeviceOutcome outcome)
    {
        var id = outcome.Device!.DeviceId;
        WriteVerbose(outcome.Action == RegistryAction.Absent ? $"Device '{id}' was not registered: nothing to remove." : $"Removed device '{id}'.");
        if (PassThru)
        {
            WriteObject(new IoTHubDeviceRemoval(id, outcome.Device.HostName, outcome.Action.ToString()));
        }
    }
}
