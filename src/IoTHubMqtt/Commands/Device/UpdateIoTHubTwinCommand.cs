using System.Management.Automation;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// <para type="synopsis">Patches the device twin's reported properties.</para>
/// </summary>
[Cmdlet(VerbsData.Update, "IoTHubTwin", DefaultParameterSetName = ConnectionSet, SupportsShouldProcess = true)]
[OutputType(typeof(IoTHubTwinUpdate))]
public sealed class UpdateIoTHubTwinCommand : DeviceCmdlet
{
    /// <summary>The patch: a hashtable, an object or a JSON object string. Nested values merge; $null deletes a property.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [Alias("Patch")]
    public object? Reported { get; set; }

    protected override void ProcessRecord()
    {
        System.Text.Json.Nodes.JsonObject patch = null!;
        Terminating(() => patch = PowerShellJson.ToJsonObject(Reported, nameof(Reported)));
        var json = patch.ToJsonString();
        if (!ShouldProcess(Device.DeviceId, $"Update reported properties ({json.Length} bytes)"))
        {
            return;
        }

        var version = Run(ct => Client.UpdateReportedPropertiesAsync(patch, ct));
        WriteVerbose($"Reported properties are now at version {version}.");
        WriteObject(new IoTHubTwinUpdate { DeviceId = Device.DeviceId, ReportedVersion = version, Patch = json });
    }
}
