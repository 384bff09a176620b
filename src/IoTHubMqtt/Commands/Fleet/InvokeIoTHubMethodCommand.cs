using System.Management.Automation;
using System.Text.Json.Nodes;
using IoTHubMqtt.Completion;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Calls a direct method on devices and returns each device's status and payload.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "IoTHubMethod", SupportsShouldProcess = true)]
[OutputType(typeof(IoTHubMethodResult), typeof(IoTHubMethodJob))]
public sealed class InvokeIoTHubMethodCommand : ServiceCmdlet
{
    private readonly List<string> deviceIds = [];
    private OrderedBatch<IoTHubMethodResult>? batch;

    /// <summary>The device to call; from the pipeline by value or property name (devices from Get-IoTHubDevice).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DeviceIdCompleter))]
    public string DeviceId { get; set; } = string.Empty;

    /// <summary>The method name.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [Alias("MethodName")]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    /// <summary>The payload: a hashtable, an object, an array or a plain value, sent as JSON.</summary>
    [Parameter(Position = 2)]
    public object? Payload { get; set; }

    /// <summary>Seconds the hub waits for the device's answer (5 to 300). Default 30.</summary>
    [Parameter]
    [ValidateRange(5, 300)]
    public int Timeout { get; set; } = 30;

    /// <summary>Seconds the hub waits for an offline device to connect (0 to 300). Default 0: an offline device is DeviceNotOnline at once.</summary>
    [Parameter]
    [ValidateRange(0, 300)]
    public int ConnectTimeout { get; set; }

    /// <summary>How many devices are called at the same time. Default 16.</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 16;

    /// <summary>Returns a job at once and calls the method in the background; collect the results with Receive-Job -Wait.</summary>
    [Parameter]
    public SwitchParameter AsJob { get; set; }

    private JsonNode? payloadJson;

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        Terminating(() => payloadJson = PowerShellJson.ToJsonNode(Payload));
        batch = new OrderedBatch<IoTHubMethodResult>(ThrottleLimit);
    }

    protected override void ProcessRecord()
    {
        // A direct method acts on the device (reboot, update, reset): -WhatIf lists the calls, -Confirm asks for each.
        if (!ShouldProcess(DeviceId, $"Invoke direct method '{Name}'"))
        {
            return;
        }

        if (AsJob)
        {
            deviceIds.Add(DeviceId);
            return;
        }

        var service = Service;
        var call = Call(DeviceId);
        batch!.Add(DeviceId, ct => call(service, ct), StopToken);
        WriteReady();
    }

    protected override void EndProcessing()
    {
        if (AsJob)
        {
            var service = Service;
            var ids = deviceIds.ToList();
            var job = new IoTHubMethodJob(MyInvocation.Line, service.HostName);
            var throttle = ThrottleLimit;
            job.Start(async (report, ct) =>
            {
                using var jobBatch = new OrderedBatch<IoTHubMethodResult>(throttle);
                foreach (var id in ids)
                {
                    var call = Call(id);
                    jobBatch.Add(id, token => call(service, token), ct);
                }

                while (jobBatch.PeekNext() is { } next)
                {
                    await next.Outcome.WaitAsync(ct).ConfigureAwait(false);
                    foreach (var item in jobBatch.TakeReady())
                    {
                        report(item.Target, item.Outcome.Result.Value, item.Outcome.Result.Error);
                    }
                }
            });
            JobRepository.Add(job);
            WriteObject(job);
            return;
        }

        FinishBatch(batch!, BatchProgress);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            batch?.Dispose();
        }

        base.Dispose(disposing);
    }

    private Func<IoTHubServiceClient, CancellationToken, Task<IoTHubMethodResult>> Call(string deviceId)
    {
        var name = Name;
        var payload = payloadJson;
        var timeout = TimeSpan.FromSeconds(Timeout);
        var connect = TimeSpan.FromSeconds(ConnectTimeout);
        return async (service, ct) => new IoTHubMethodResult(await service.InvokeMethodAsync(deviceId, name, payload, timeout, connect, ct).ConfigureAwait(false));
    }

    private static readonly (int Id, string Activity, string Noun) BatchProgress = (4, "Invoke-IoTHubMethod", "devices answered");

    private void WriteReady() => WriteReady(batch!, BatchProgress);
}
