using System.Management.Automation;
using IoTHubMqtt.Core.Service.Registry;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// Base of the cmdlets that write the registry device by device (New-IoTHubDevice, Remove-IoTHubDevice): pipeline input goes
/// to a core <see cref="DeviceRegistryWriter"/> (bulk calls of up to 100), and its outcomes come back in input order — an
/// object or a non-terminating error each — with progress, including the hub's throttling waits.
/// </summary>
public abstract class RegistryWriterCmdlet : ServiceCmdlet
{
    /// <summary>Inputs held before the cmdlet waits for outcomes (keeps memory flat for long pipelines).</summary>
    private const int MaxOutstanding = 2000;
    private DeviceRegistryWriter? writer;

    /// <summary>How many bulk calls (of up to 100 devices each) run at the same time. Default 4.</summary>
    [Parameter]
    [ValidateRange(1, 16)]
    public int ThrottleLimit { get; set; } = 4;

    private protected abstract (int Id, string Activity, string Verb) Progress { get; }

    private protected abstract DeviceRegistryWriterOptions WriterOptions();

    private protected abstract void WriteOutcome(DeviceOutcome outcome);

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        writer = new DeviceRegistryWriter(Service, WriterOptions(), StopToken);
    }

    /// <summary>Gives one input to the writer (with ShouldProcess asked for valid ones) and writes what is ready.</summary>
    private protected void Add(DeviceInput input, Func<string, bool> shouldProcess)
    {
        writer!.Add(input, shouldProcess);
        WriteReady();
        while (writer.Outstanding > MaxOutstanding)
        {
            WaitForNext();
        }
    }

    protected override void EndProcessing()
    {
        writer!.Complete();
        while (writer.NextTarget is not null)
        {
            WaitForNext();
        }

        WriteProgress(new ProgressRecord(Progress.Id, Progress.Activity, "Done") { RecordType = ProgressRecordType.Completed });
    }

    /// <summary>Waits for the next outcome in order, refreshing the progress (and the hub's throttling wait) every second.</summary>
    private void WaitForNext()
    {
        var w = writer!;
        while (true)
        {
            var status = $"{w.Completed} of {w.Added} devices {Progress.Verb} ({w.Rate:0.#}/s)";
            var waiting = w.ThrottledUntil is { } until ? $"the hub throttles registry operations: waiting until {until.ToLocalTime():HH:mm:ss}" : $"waiting for {w.NextTarget}";
            WriteProgress(new ProgressRecord(Progress.Id, Progress.Activity, status)
            {
                PercentComplete = (int)(100L * w.Completed / Math.Max(1, w.Added)),
                CurrentOperation = waiting,
            });
            if (Run(async ct =>
            {
                var next = w.WaitForNextAsync(ct);
                return await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(1), ct)).ConfigureAwait(false) == next;
            }))
            {
                break;
            }
        }

        WriteReady();
    }

    private void WriteReady()
    {
        DrainPosted();
        foreach (var outcome in writer!.TakeReady())
        {
            if (outcome.Error is { } error)
            {
                WriteError(error is OperationCanceledException && StopToken.IsCancellationRequested ? throw new PipelineStoppedException() : error, outcome.Target);
            }
            else
            {
                WriteOutcome(outcome);
            }

            if (writer.Completed % 100 == 0 || writer.NextTarget is null)
            {
                WriteProgress(new ProgressRecord(Progress.Id, Progress.Activity, $"{writer.Completed} of {writer.Added} devices {Progress.Verb} ({writer.Rate:0.#}/s)")
                {
                    PercentComplete = (int)(100L * writer.Completed / Math.Max(1, writer.Added)),
                });
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            writer?.Dispose();
        }

        base.Dispose(disposing);
    }
}
