using System.Management.Automation;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// What Send-IoTHubMessage writes about the messages it sent, in the order it sent them and once the hub has
/// acknowledged each: an error for a message that failed, a verbose line and (with -PassThru) a record for one that
/// arrived, and the progress bar when the number of messages is known. Runs on the pipeline thread.
/// </summary>
internal sealed class SentMessageWriter(string deviceId, bool passThru, bool verbose, long total)
{
    private readonly TelemetryAcknowledgements<object?> pending = new();
    private readonly CountProgress progress = new(0x5E4D, "Send-IoTHubMessage", "acknowledged", "waiting for the hub", "msgs/s") { Total = total };

    /// <summary>How many messages are sent in all, when the caller learns it (0: unknown).</summary>
    public long Total
    {
        get => progress.Total;
        set => progress.Total = value;
    }

    /// <summary>A message handed to the client; <paramref name="body"/> is the body as a -PassThru record shows it.</summary>
    public void Add(Task<TelemetrySendResult> acknowledged, TelemetryMessage message, object? body, byte[]? buffer) =>
        pending.Add(acknowledged, message, body, buffer);

    public Task WhenAllAsync(CancellationToken cancellationToken) => pending.WhenAllAsync(cancellationToken);

    /// <summary>Writes the messages at the head of the order whose acknowledgement has come (every one when <paramref name="all"/>).</summary>
    public void Write(Cmdlet cmdlet, bool all)
    {
        while (pending.TryTake(all, out var sent))
        {
            if (sent.Acknowledged.Exception is { } failure)
            {
                cmdlet.WriteError(ErrorMapper.ToErrorRecord(failure.InnerException ?? failure, sent.Message.MessageId));
            }
            else if (sent.Acknowledged.IsCompletedSuccessfully)
            {
                if (verbose)
                {
                    cmdlet.WriteVerbose(sent.Describe());
                }

                if (passThru)
                {
                    cmdlet.WriteObject(IoTHubSentMessage.From(deviceId, sent.Message, sent.State, sent.Acknowledged.Result));
                }
            }
        }

        if (progress.Next(pending.Acknowledged, pending.Count, force: pending.Count == 0) is { } record)
        {
            cmdlet.WriteProgress(record);
        }
    }

    public void Complete(Cmdlet cmdlet)
    {
        if (progress.Completed() is { } record)
        {
            cmdlet.WriteProgress(record);
        }
    }

    /// <summary>Stopped (Ctrl+C) or failed with messages unacknowledged: they go on in the client.</summary>
    public void Abandon() => pending.Abandon();
}
