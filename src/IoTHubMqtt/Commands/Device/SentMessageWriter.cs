using System.Management.Automation;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// What Send-IoTHubMessage writes about the messages it sent, in the order it sent them and once the hub has
/// acknowledged each: an error for a message that failed, a verbose line and (with -PassThru) a record for one that
/// arrived, and the progress bar when the number of messages is known. Runs on the pipeline thread.
/// </summary>
internal sealed class SentMessageWriter(bool passThru, bool verbose, long total)
{
    private readonly TelemetryAcknowledgements<(string DeviceId, object? Body)> pending = new();
    private readonly CountProgress progress = new(0x5E4D, "Send-IoTHubMessage", "acknowledged", "waiting for the hub", "msgs/s") { Total = total };

    /// <summary>How many messages are sent in all, when the caller learns it (0: unknown).</summary>
    public long Total
    {
        get => progress.Total;
        set => progress.Total = value;
    }

    /// <summary>A message handed to a device's client; <paramref name="body"/> is the body as a -PassThru record shows it.</summary>
    public void Add(string deviceId, Task<TelemetrySendResult> acknowledged, TelemetryMessage message, object? body, byte[]? buffer) =>
        pending.Add(acknowledged, message, (deviceId, body), buffer);

    /// <summary>
    /// Hands <paramref name="message"/> to each device in turn (those <paramref name="confirm"/> allows, by index),
    /// through <paramref name="send"/>, and adds each send in that order. The last send holds the pooled
    /// <paramref name="buffer"/>: entries are taken in order, so it is given back only once every send of the message
    /// has finished; a message no device took gives it back at once. A send refused at once goes to
    /// <paramref name="fail"/> and the other devices go on.
    /// </summary>
    public void SendFromEach(IReadOnlyList<IoTHubDeviceConnection> devices, TelemetryMessage message, object? shown, byte[]? buffer,
        Func<int, bool> confirm, Func<IoTHubDeviceConnection, Task<TelemetrySendResult>> send, Action<Exception> fail)
    {
        (string DeviceId, Task<TelemetrySendResult> Acknowledged)? previous = null;
        try
        {
            for (var i = 0; i < devices.Count; i++)
            {
                if (!confirm(i))
                {
                    continue;
                }

                try
                {
                    var acknowledged = send(devices[i]);
                    if (previous is { } earlier)
                    {
                        Add(earlier.DeviceId, earlier.Acknowledged, message, shown, null);
                    }

                    previous = (devices[i].DeviceId, acknowledged);
                }
                catch (Exception ex) when (ErrorMapper.IsMappable(ex))
                {
                    fail(ex);
                }
            }
        }
        finally
        {
            if (previous is { } last)
            {
                Add(last.DeviceId, last.Acknowledged, message, shown, buffer);
            }
            else
            {
                PayloadBuffers.Return(buffer);
            }
        }
    }

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
                    cmdlet.WriteObject(IoTHubSentMessage.From(sent.State.DeviceId, sent.Message, sent.State.Body, sent.Acknowledged.Result));
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
