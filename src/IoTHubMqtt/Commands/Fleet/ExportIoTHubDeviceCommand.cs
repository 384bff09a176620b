using System.Management.Automation;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Core.Service.Registry;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Exports every device with its twin through the hub's export job, as objects or as the hub's device file.</para>
/// </summary>
[Cmdlet(VerbsData.Export, "IoTHubDevice")]
[OutputType(typeof(IoTHubDevice))]
public sealed class ExportIoTHubDeviceCommand : RegistryJobCmdlet
{
    private const string Activity = "Export-IoTHubDevice";

    /// <summary>Export the devices without their keys (PrimaryKey, SecondaryKey and ConnectionString are then null).</summary>
    [Parameter]
    public SwitchParameter ExcludeKeys { get; set; }

    /// <summary>Save the hub's device file here (JSON lines, one device with its twin each; readable by the owner only) instead of writing objects.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutFile { get; set; }

    private protected override int ProgressId => 6;

    protected override void EndProcessing()
    {
        var container = OpenContainer();
        var (job, blob) = (default(RegistryJob)!, string.Empty);
        Terminating(() => (job, blob) = Run(ct => RegistryJobs.ExportAsync(Service, container, ExcludeKeys, JobProgressSink(Activity), ct)), Service.HostName);
        WriteVerbose($"Export job {job.JobId} {job.Status}: {container}/{blob}.");
        if (OutFile is not null)
        {
            var path = GetUnresolvedProviderPathFromPSPath(OutFile);
            Terminating(() => Run(ct => container.DownloadToPrivateFileAsync(blob, path, ct)), OutFile);
            CompleteProgress(Activity);
            return;
        }

        var devices = RegistryJobs.ReadExportAsync(container, blob, Service.HostName, StopToken).GetAsyncEnumerator(StopToken);
        try
        {
            var count = 0;
            while (Run(async ct => await devices.MoveNextAsync().ConfigureAwait(false)))
            {
                WriteObject(new IoTHubDevice(devices.Current, "Exported") { Tags = Infrastructure.PowerShellJson.ToPowerShell(devices.Current.Tags) });
                if (++count % 1000 == 0)
                {
                    WriteProgress(new ProgressRecord(ProgressId, Activity, $"{count} devices read from {blob}"));
                }
            }
        }
        finally
        {
            _ = devices.DisposeAsync().AsTask().ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }

        CompleteProgress(Activity);
    }
}
