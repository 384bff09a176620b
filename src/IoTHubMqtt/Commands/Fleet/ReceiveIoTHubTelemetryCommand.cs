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

    /// <summary>Start (default): the messages the hub still holds, then new ones; End: only messages enqueued from now on.</summary>
    [Parameter]
    [ValidateSet("Start", "End")]
    public string StartPosition { get; set; } = "Start";

    /// <summary>The consumer group of the Event Hub-compatible endpoint. Default: $Default.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ConsumerGroup { get; set; } = "$Default";

    protected override void ProcessRecord()
    {
        var clock = Stopwatch.StartNew();
        var read = new TelemetryReadOptions
        {
            ConsumerGroup = ConsumerGroup,
            DeviceId = DeviceId,
            EnqueuedAfter = StartPosition == "End" ? DateTimeOffset.UtcNow : null,
        };
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

        WriteVerbose($"Reading partitions {string.Join(", ", reader.PartitionIds)} of {reader.EventHubName} on {reader.EventHubHost}.");
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
                    WriteObject(new IoTHubTelemetryMessage(message));
                    received++;
                }
            }
        }
        finally
        {
            // Closing needs no pipeline thread; bounded, so that Ctrl+C is not held up by a slow peer.
            _ = reader.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
        }

        if (Count > 0 && received < Count)
        {
            WriteError(new IoTHubMqttException("TelemetryWaitTimedOut", IoTHubErrorKind.Timeout,
                $"{received} of {Count} message(s) arrived within {Timeout} s.", "Wait longer with -Timeout, or check that the devices send.", DeviceId));
        }
    }
}
