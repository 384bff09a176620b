using System.Management.Automation;
using IoTHubMqtt.Completion;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Reads the telemetry devices send, as it arrives, with its properties and enqueued time.</para>
/// </summary>
[Cmdlet(VerbsCommunications.Receive, "IoTHubTelemetry")]
[OutputType(typeof(IoTHubTelemetryMessage))]
public sealed class ReceiveIoTHubTelemetryCommand : ServiceCmdlet
{
    private const int ProgressId = 7;
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Only messages of this device. Default: every device.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DeviceIdCompleter))]
    public string? DeviceId { get; set; }

    /// <summary>Stop after this many messages; a timeout before then is an error (TelemetryWaitTimedOut). 0 (default): read until -Timeout.</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int Count { get; set; }

    /// <summary>Seconds to read. Default 30; 0 reads until Ctrl+C (or -Count).</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int Timeout { get; set; } = 30;

    /// <summary>Where a partition without a checkpoint starts. Start (default): the messages the hub still holds; End: only messages enqueued from now on.</summary>
    [Parameter]
    [ValidateSet("Start", "End")]
    public string StartPosition { get; set; } = "Start";

    /// <summary>Where a partition without a checkpoint starts: at the messages enqueued at or after this time.</summary>
    [Parameter]
    public DateTimeOffset? StartTime { get; set; }

    /// <summary>The consumer group of the Event Hub-compatible endpoint. Default: $Default.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ConsumerGroup { get; set; } = "$Default";

    /// <summary>Only these partitions (readers that split the partitions between them). Default: every partition.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? PartitionId { get; set; }

    /// <summary>
    /// Where to keep the reader's position and partition ownership: a file path, or the URL of an Azure Storage blob
    /// container (with a SAS in its query); with -StorageConnectionString, the container's name.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Checkpoint { get; set; }

    /// <summary>A storage account connection string; -Checkpoint is then the container's name.</summary>
    [Parameter]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string? StorageConnectionString { get; set; }

    /// <summary>How often readers that share a checkpoint store renew their partitions and balance them. Default 10 seconds.</summary>
    [Parameter]
    public TimeSpan LoadBalancingInterval { get; set; } = TimeSpan.FromSeconds(10);

    protected override void ProcessRecord()
    {
        var request = new TelemetryReceiveRequest
        {
            DeviceId = DeviceId,
            Count = Count,
            Timeout = Timeout == 0 ? null : TimeSpan.FromSeconds(Timeout),
            Start = StartPosition == "End" ? TelemetryStart.Latest : TelemetryStart.Earliest,
            StartGiven = MyInvocation.BoundParameters.ContainsKey(nameof(StartPosition)),
            StartTime = StartTime,
            ConsumerGroup = ConsumerGroup,
            PartitionIds = PartitionId,
            Checkpoint = Checkpoint,
            StorageConnectionString = StorageConnectionString,
            LoadBalancingInterval = LoadBalancingInterval,
            ResolvePath = GetUnresolvedProviderPathFromPSPath,
        };
        Task<TelemetryReceiveResult>? receiving = null;
        TelemetryReceiveResult result;
        try
        {
            result = Run(ct => receiving = Service.ReceiveTelemetryAsync(request, Deliver, Opened, ct));
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            ThrowTerminatingError(ex, DeviceId ?? Service.HostName);
            return;
        }
        finally
        {
            // Stopped (Ctrl+C, or a later command has all it wants): the read closes its connections and writes its last
            // checkpoint before the command ends; bounded, so that a dead peer does not hold the prompt.
            _ = receiving?.ContinueWith(t => _ = t.Exception, TaskScheduler.Default).Wait(StopTimeout);
        }

        if (Count > 0)
        {
            WriteProgress(new ProgressRecord(ProgressId, "Receive-IoTHubTelemetry", "Done") { RecordType = ProgressRecordType.Completed });
        }

        if (result.Shortfall(DeviceId) is { } shortfall)
        {
            WriteError(shortfall, DeviceId);
        }
    }

    private void Opened(TelemetryReader reader) => VerboseSink(
        $"Reading partitions {string.Join(", ", reader.PartitionIds)} of {reader.EventHubName} on {reader.EventHubHost} ({reader.ConsumerGroup}" +
        (reader.Checkpoint is null ? ")." : $", checkpoints in {reader.Checkpoint}, reader {reader.ReaderId})."));

    /// <summary>Writes a batch on the pipeline thread; the read goes on once it is written (or stops when writing fails).</summary>
    private Task<int> Deliver(TelemetryBatch batch, CancellationToken cancellationToken)
    {
        var written = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = written.Task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        Post(() =>
        {
            try
            {
                var count = batch.Write(message => WriteObject(new IoTHubTelemetryMessage(message)));
                if (Count > 0)
                {
                    var received = batch.ReceivedBefore + count;
                    WriteProgress(new ProgressRecord(ProgressId, "Receive-IoTHubTelemetry", $"{received} of {Count} message(s)") { PercentComplete = (int)(100L * received / Count) });
                }

                written.TrySetResult(count);
            }
            catch (Exception ex)
            {
                written.TrySetException(ex); // the read ends and closes; the pipeline goes on with the exception
                throw;
            }
        });
        return written.Task.WaitAsync(cancellationToken);
    }
}
