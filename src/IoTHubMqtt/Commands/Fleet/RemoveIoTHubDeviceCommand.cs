using System.Management.Automation;
using IoTHubMqtt.Completion;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Removes devices from the hub's registry.</para>
/// </summary>
[Cmdlet(VerbsCommon.Remove, "IoTHubDevice", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(void))]
public sealed class RemoveIoTHubDeviceCommand : ServiceCmdlet
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

    protected override void ProcessRecord()
    {
        // -Force skips the confirmation (ConfirmImpact is High); -WhatIf still only reports.
        var whatIf = MyInvocation.BoundParameters.ContainsKey("WhatIf");
        if ((!Force || whatIf) && !ShouldProcess(DeviceId, "Remove device"))
        {
            return;
        }

        var etag = Force || string.IsNullOrWhiteSpace(ETag) ? null : ETag;
        try
        {
            var id = DeviceId;
            Run(ct => Service.DeleteDeviceAsync(id, etag, ct));
            WriteVerbose($"Removed device '{DeviceId}'.");
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            WriteError(ex, DeviceId);
        }
    }
}
