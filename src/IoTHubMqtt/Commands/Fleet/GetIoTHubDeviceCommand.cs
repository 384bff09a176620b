using System.Management.Automation;
using IoTHubMqtt.Completion;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Gets devices from the hub's registry: the ones named, or all of them.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "IoTHubDevice")]
[OutputType(typeof(IoTHubDevice))]
public sealed class GetIoTHubDeviceCommand : ServiceCmdlet
{
    /// <summary>Device ids to get, with their keys. Left out: every device, by a registry query (without keys).</summary>
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DeviceIdCompleter))]
    public string[]? DeviceId { get; set; }

    /// <summary>Devices a query page asks for (1 to 1000). Default 100.</summary>
    [Parameter]
    [ValidateRange(1, 1000)]
    public int PageSize { get; set; } = 100;

    protected override void ProcessRecord()
    {
        if (DeviceId is null)
        {
            return;
        }

        foreach (var id in DeviceId)
        {
            try
            {
                WriteObject(new IoTHubDevice(Run(ct => Service.GetDeviceAsync(id, ct)), "Read"));
            }
            catch (Exception ex) when (ErrorMapper.IsMappable(ex))
            {
                WriteError(ex, id);
            }
        }
    }

    protected override void EndProcessing()
    {
        if (MyInvocation.BoundParameters.ContainsKey(nameof(DeviceId)) || MyInvocation.ExpectingInput)
        {
            return;
        }

        string? continuation = null;
        var count = 0;
        do
        {
            DeviceQueryPage page;
            try
            {
                var token = continuation;
                page = Run(ct => Service.QueryDevicesAsync(token, PageSize, ct));
            }
            catch (Exception ex) when (ErrorMapper.IsMappable(ex))
            {
                ThrowTerminatingError(ex, Service.HostName);
                return;
            }

            foreach (var device in page.Devices)
            {
                WriteObject(new IoTHubDevice(device, "Read"));
            }

            count += page.Devices.Count;
            continuation = page.Continuation;
            if (continuation is not null)
            {
                WriteProgress(new ProgressRecord(2, "Get-IoTHubDevice", $"{count} devices read"));
            }
        }
        while (continuation is not null);
    }
}
