using System.Diagnostics;
using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>The delivery outcome of a cloud-to-device message.</summary>
public sealed class IoTHubCloudMessageFeedback
{
    internal IoTHubCloudMessageFeedback(CloudMessageFeedback feedback)
    {
        OriginalMessageId = feedback.OriginalMessageId;
        DeviceId = feedback.DeviceId;
        StatusCode = feedback.StatusCode;
        Description = feedback.Description;
        EnqueuedTime = feedback.EnqueuedTime;
    }

    /// <summary>The MessageId of the message sent with Send-IoTHubCloudMessage.</summary>
    public string OriginalMessageId { get; }

    public string DeviceId { get; }

    /// <summary>Success (the device completed it), Expired, DeliveryCountExceeded, Rejected or Purged.</summary>
    public string StatusCode { get; }

    /// <summary>The hub's description of the outcome.</summary>
    public string? Description { get; }

    public DateTimeOffset EnqueuedTime { get; }

    public override string ToString() => $"{OriginalMessageId} {DeviceId}: {StatusCode}";
}

/// <summary>
/// <para type="synopsis">Reads the delivery feedback of cloud-to-device messages sent with -Ack.</para>
/// </summary>
[Cmdlet(VerbsCommunications.Receive, "IoTHubCloudMessageFeedback")]
[OutputType(typeof(IoTHubCloudMessageFeedback))]
public sealed class ReceiveIoTHubCloudMessageFeedbackCommand : ServiceCmdlet
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    /// <summary>Only feedback on these message ids; from the pipeline by property name (receipts of Send-IoTHubCloudMessage).</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[]? MessageId { get; set; }

    /// <summary>Stop after this many records (the rest of the hub's last batch comes too); fewer within -Timeout is the error CloudMessageFeedbackTimedOut. 0 (default): read until -Timeout.</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int Count { get; set; }

    /// <summary>Seconds to wait for feedback. Default 30.</summary>
    [Parameter]
    [ValidateRange(0, 3600)]
    public int Timeout { get; set; } = 30;

    private readonly List<string> messageIds = [];

    protected override void ProcessRecord()
    {
        messageIds.AddRange(MessageId ?? []);
    }

    protected override void EndProcessing()
    {
        var wanted = Count > 0 ? Count : messageIds.Count;
        var clock = Stopwatch.StartNew();
        var received = 0;
        CloudMessageFeedbackReader reader;
        try
        {
            reader = Run(ct => Service.OpenCloudMessageFeedbackReaderAsync(ct));
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            ThrowTerminatingError(ex, Service.HostName);
            return;
        }

        // Batches with none of the wanted message ids stay unsettled while this reads, then go back to the queue.
        var skipped = new List<CloudMessageFeedbackBatch>();
        try
        {
            while (wanted == 0 || received < wanted)
            {
                var remaining = TimeSpan.FromSeconds(Timeout) - clock.Elapsed;
                if (remaining <= TimeSpan.Zero)
                {
                    break;
                }

                CloudMessageFeedbackBatch? batch;
                try
                {
                    batch = Run(ct => reader.ReceiveAsync(remaining < PollInterval ? remaining : PollInterval, ct));
                }
                catch (Exception ex) when (ErrorMapper.IsMappable(ex))
                {
                    ThrowTerminatingError(ex, Service.HostName);
                    return;
                }

                if (batch is null)
                {
                    continue;
                }

                var matching = batch.Records.Where(r => messageIds.Count == 0 || messageIds.Contains(r.OriginalMessageId, StringComparer.Ordinal)).ToList();
                if (matching.Count == 0)
                {
                    skipped.Add(batch);
                    continue;
                }

                reader.Complete(batch);
                foreach (var record in matching)
                {
                    WriteObject(new IoTHubCloudMessageFeedback(record));
                    received++;
                }
            }
        }
        finally
        {
            foreach (var batch in skipped)
            {
                reader.Abandon(batch);
            }

            // Closing needs no pipeline thread; bounded, so that Ctrl+C is not held up by a slow peer.
            _ = reader.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
        }

        if (wanted > 0 && received < wanted)
        {
            WriteError(new IoTHubMqttException(ErrorIds.CloudMessageFeedbackTimedOut,
                $"{received} of {wanted} feedback record(s) arrived within {Timeout} s.",
                "The device may not have received the message yet: wait longer with -Timeout. Feedback comes only for messages sent with -Ack.", null));
        }
    }
}
