using System.Management.Automation;
using System.Text.Json.Nodes;
using IoTHubMqtt.Completion;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Patches the desired properties of device twins.</para>
/// </summary>
[Cmdlet(VerbsCommon.Set, "IoTHubDesiredProperty", SupportsShouldProcess = true)]
[OutputType(typeof(IoTHubDesiredProperties))]
public sealed class SetIoTHubDesiredPropertyCommand : ServiceCmdlet
{
    private JsonObject? patch;

    /// <summary>The device whose twin to patch; from the pipeline by value or property name.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DeviceIdCompleter))]
    public string DeviceId { get; set; } = string.Empty;

    /// <summary>The patch: a hashtable or object (or a JSON object string); $null as a value deletes that property.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNull]
    public object Property { get; set; } = null!;

    /// <summary>Patch only if the twin still has this ETag (else PreconditionFailed).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ETag { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        Terminating(() => patch = PowerShellJson.ToJsonObject(Property, nameof(Property)));
    }

    protected override void ProcessRecord()
    {
        if (!ShouldProcess(DeviceId, "Set desired properties"))
        {
            return;
        }

        try
        {
            var id = DeviceId;
            var twin = Run(ct => Service.UpdateDesiredPropertiesAsync(id, patch!, ETag, ct));
            WriteObject(new IoTHubDesiredProperties(twin));
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            WriteError(ex, DeviceId);
        }
    }
}
