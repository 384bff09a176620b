using System.Diagnostics;
using System.Management.Automation;
using IoTHubMqtt.Completion;
using IoTHubMqtt.Core.Errors;
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
        var clock = Stopwatch.StartNew();
        var read = Options();
        TelemetryReader reader;
        try
        {
            reader = Run(ct => Service.OpenTelemetryReaderAsync(read, ct));
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            ThrowTerminatingError(ex, DeviceId ?? Service.HostName);
            return;
        }

        WriteVerbose($"Reading partitions {string.Join(", ", reader.PartitionIds)} of {reader.EventHubName} on {reader.EventHubHost} ({reader.ConsumerGroup}" +
            (read.Checkpoint is null ? ")." : $", checkpoints in {read.Checkpoint}, reader {reader.ReaderId})."));
        var received = 0;
        try
        {
            while (Count == 0 || received < Count)
            {
                var remaining = Timeout == 0 ? TimeSpan.FromSeconds(20) : TimeSpan.FromSeconds(Timeout) - clock.Elapsed;
                if (remaining <= TimeSpan.Zero)
                {
                    break;
                }

                var wait = remaining > TimeSpan.FromSeconds(20) ? TimeSpan.FromSeconds(20) : remaining;
                var max = Count == 0 ? 100 : Math.Min(100, Count - received);
                IReadOnlyList<TelemetryEvent> batch;
                try
                {
                    batch = Run(ct => reader.ReadAsync(max, wait, ct));
                }
                catch (Exception ex) when (ErrorMapper.IsMappable(ex))
                {
                    ThrowTerminatingError(ex, DeviceId ?? Service.HostName);
                    return;
                }

                foreach (var message in batch)
                {
                    if (!reader.BeginDelivery(message))
                    {
                        continue; // its partition went to another reader, which writes it
                    }

                    var delivered = false;
                    try
                    {
                        WriteObject(new IoTHubTelemetryMessage(message));
                        delivered = true;
                    }
                    finally
                    {
                        reader.EndDelivery(message, delivered); // written: the checkpoint may move past it
                    }

                    received++;
                }

                if (Count > 0)
                {
                    WriteProgress(new ProgressRecord(ProgressId, "Receive-IoTHubTelemetry", $"{received} of {Count} message(s)") { PercentComplete = (int)(100L * received / Count) });
                }
            }
        }
        finally
        {
            if (Count > 0)
            {
                WriteProgress(new ProgressRecord(ProgressId, "Receive-IoTHubTelemetry", "Done") { RecordType = ProgressRecordType.Completed });
            }

            // Writes the last checkpoint and gives the partitions up; bounded, so that Ctrl+C is not held up by a dead peer.
            if (!reader.DisposeAsync().AsTask().Wait(StopTimeout))
            {
                WriteVerbose($"The last checkpoint was not confirmed within {StopTimeout.TotalSeconds} s; the next reader may read some messages again.");
            }
        }

        if (Count > 0 && received < Count)
        {
            WriteError(new IoTHubMqttException(ErrorIds.TelemetryWaitTimedOut,
                $"{received} of {Count} message(s) arrived within {Timeout} s.", "Wait longer with -Timeout, or check that the devices send.", DeviceId));
        }
    }

    private TelemetryReadOptions Options()
    {
        if (StartTime is not null && MyInvocation.BoundParameters.ContainsKey(nameof(StartPosition)))
        {
            ThrowTerminatingError(InvalidArgument(ErrorIds.TelemetryStartConflict, "Pass -StartPosition or -StartTime, not both.", null, "StartTime"));
        }

        if (StorageConnectionString is not null && Checkpoint is null)
        {
            ThrowTerminatingError(InvalidArgument(ErrorIds.CheckpointContainerMissing, "-StorageConnectionString needs -Checkpoint with the container's name.", null, "Checkpoint"));
        }

        if (LoadBalancingInterval <= TimeSpan.Zero)
        {
            ThrowTerminatingError(InvalidArgument(ErrorIds.LoadBalancingIntervalInvalid, "-LoadBalancingInterval must be longer than zero.", null, "LoadBalancingInterval"));
        }

        TelemetryCheckpointLocation? checkpoint = null;
        if (Checkpoint is not null)
        {
            checkpoint = StorageConnectionString is not null ? TelemetryCheckpointLocation.Container(StorageConnectionString, Checkpoint)
                : Uri.TryCreate(Checkpoint, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http" ? TelemetryCheckpointLocation.Container(uri)
                : TelemetryCheckpointLocation.File(GetUnresolvedProviderPathFromPSPath(Checkpoint));
        }

        return new TelemetryReadOptions
        {
            ConsumerGroup = ConsumerGroup,
            DeviceId = DeviceId,
            Start = StartTime is not null ? TelemetryStart.EnqueuedTime : StartPosition == "End" ? TelemetryStart.Latest : TelemetryStart.Earliest,
            // At or after -StartTime: Event Hubs starts after a time, in milliseconds.
            EnqueuedAfter = StartTime?.AddMilliseconds(-1),
            PartitionIds = PartitionId,
            Checkpoint = checkpoint,
            LoadBalancingInterval = LoadBalancingInterval,
            // As the Event Hubs processor: 30 s, or three intervals when they are longer, so that a busy reader keeps its partitions.
            OwnershipExpiration = LoadBalancingInterval * 3 > TimeSpan.FromSeconds(30) ? LoadBalancingInterval * 3 : TimeSpan.FromSeconds(30),
        };
    }
}
