using System.Collections;
using System.Collections.Specialized;
using System.Globalization;
using System.Management.Automation;
using System.Text;
using System.Text.Json;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// <para type="synopsis">Sends device-to-cloud telemetry messages.</para>
/// </summary>
[Cmdlet(VerbsCommunications.Send, "IoTHubMessage", DefaultParameterSetName = ConnectionSet, SupportsShouldProcess = true)]
[OutputType(typeof(IoTHubSentMessage))]
public sealed class SendIoTHubMessageCommand : DeviceCmdlet
{
    private readonly Queue<(Task<TelemetrySendResult> Acknowledged, TelemetryMessage Message, object? Body)> pending = new();
    private bool verbose;
    private string? shouldProcessText;

    /// <summary>The body: a string (text/plain), bytes (application/octet-stream), or any other object or hashtable (JSON).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [AllowEmptyString]
    public object? Body { get; set; }

    /// <summary>Application properties, sent in the topic's property bag.</summary>
    [Parameter]
    [Alias("Properties")]
    public IDictionary? Property { get; set; }

    [Parameter]
    public string? MessageId { get; set; }

    [Parameter]
    public string? CorrelationId { get; set; }

    /// <summary>Content type; by default text/plain for strings, application/json for objects, application/octet-stream for bytes.</summary>
    [Parameter]
    public string? ContentType { get; set; }

    [Parameter]
    public string? ContentEncoding { get; set; }

    [Parameter]
    public DateTimeOffset? CreationTime { get; set; }

    /// <summary>0 (at most once) or 1 (at least once, acknowledged by the hub: the default). The hub does not support QoS 2.</summary>
    [Parameter]
    [ValidateRange(0, 1)]
    public int QoS { get; set; } = 1;

    /// <summary>Return a record of each message once the hub has acknowledged it.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        verbose = IsVerbose;
    }

    protected override void ProcessRecord()
    {
        if (Body is null)
        {
            WriteError(InvalidArgument("MessageBodyNull", "The message body is null.", "Pipe or pass a string, bytes or an object."));
            return;
        }

        TelemetryMessage message;
        object? shownBody;
        try
        {
            (message, shownBody) = Build(Body);
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            WriteError(ex, MessageId);
            return;
        }

        // The same text ShouldProcess(target, action) shows, made once: that overload looks up and formats a
        // resource string for every message.
        shouldProcessText ??= $"Performing the operation \"Send telemetry\" on target \"{Device.DeviceId}\".";
        if (!ShouldProcess(shouldProcessText, null, null))
        {
            return;
        }

        try
        {
            pending.Enqueue((Client.QueueTelemetry(message, QoS == 0, StopToken), message, shownBody));
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            WriteError(ex, message.MessageId);
        }

        Harvest(wait: false);
        ThrottleProducer();
    }

    /// <summary>
    /// Keeps up to three windows queued behind the window in flight: when four windows are pending, waits until the
    /// oldest window is acknowledged. The pipeline thread sleeps once per window instead of once per message, and a
    /// late wake-up (a busy machine) still finds the sender with work queued.
    /// </summary>
    private void ThrottleProducer()
    {
        var window = Client.MaxInFlight;
        while (pending.Count >= 4 * window)
        {
            // Both the oldest (results are written in order) and the last of the oldest window.
            var oldest = pending.Peek().Acknowledged;
            var later = pending.ElementAt(window - 1).Acknowledged;
            WaitWithoutSpinning(Task.WhenAll(Task.WhenAny(oldest), Task.WhenAny(later)));
            Harvest(wait: false);
        }
    }

    /// <summary>
    /// Waits on the task's event, not in <see cref="IoTHubCmdlet.Run{T}"/>'s queue, whose semaphore spins before it
    /// blocks: this wait comes once per window for as long as the pipeline runs. Posted verbose lines are written and
    /// Ctrl+C is seen every 50 ms meanwhile.
    /// </summary>
    private void WaitWithoutSpinning(Task task)
    {
        if (!task.IsCompleted)
        {
            var handle = ((IAsyncResult)task).AsyncWaitHandle;
            while (!handle.WaitOne(50))
            {
                DrainPosted();
                if (StopToken.IsCancellationRequested)
                {
                    throw new PipelineStoppedException();
                }
            }

            task.Dispose();
        }

        DrainPosted();
    }

    protected override void EndProcessing()
    {
        if (pending.Count > 0)
        {
            var all = pending.Select(p => (Task)p.Acknowledged).ToArray();
            Run(async ct =>
            {
                try
                {
                    await Task.WhenAll(all).WaitAsync(ct).ConfigureAwait(false);
                }
                catch (Exception) when (!ct.IsCancellationRequested)
                {
                    // Each failure is reported per message below.
                }
            });
        }

        Harvest(wait: true);
    }

    /// <summary>Reports acknowledged messages in the order they were sent.</summary>
    private void Harvest(bool wait)
    {
        while (pending.Count > 0 && (wait || pending.Peek().Acknowledged.IsCompleted))
        {
            var (acknowledged, message, body) = pending.Dequeue();
            if (acknowledged.IsCompletedSuccessfully)
            {
                var result = acknowledged.Result;
                if (verbose)
                {
                    WriteVerbose($"Sent {message.Body.Length} bytes{(message.MessageId is null ? "" : $" ({message.MessageId})")}; acknowledged after {result.Attempts} attempt(s).");
                }

                if (PassThru)
                {
                    var properties = new OrderedDictionary(StringComparer.Ordinal);
                    foreach (var (name, value) in message.Properties)
                    {
                        properties[name] = value;
                    }

                    WriteObject(new IoTHubSentMessage
                    {
                        DeviceId = Device.DeviceId,
                        MessageId = message.MessageId,
                        CorrelationId = message.CorrelationId,
                        ContentType = message.ContentType,
                        ContentEncoding = message.ContentEncoding,
                        Size = message.Body.Length,
                        Properties = properties,
                        Body = body,
                        AcknowledgedAt = QoS == 0 ? null : result.AcknowledgedAt,
                        Attempts = result.Attempts,
                    });
                }
            }
            else if (acknowledged.IsFaulted)
            {
                WriteError(acknowledged.Exception!.InnerException ?? acknowledged.Exception, message.MessageId);
            }
        }
    }

    private (TelemetryMessage Message, object? ShownBody) Build(object body)
    {
        var value = body is PSObject pso && pso.BaseObject is not PSCustomObject ? pso.BaseObject : body;
        TelemetryMessage message;
        object? shown;
        switch (value)
        {
            case string text:
                message = new TelemetryMessage(Encoding.UTF8.GetBytes(text)) { ContentType = ContentType ?? "text/plain", ContentEncoding = ContentEncoding ?? "utf-8" };
                shown = text;
                break;
            case byte[] bytes:
                message = new TelemetryMessage(bytes) { ContentType = ContentType ?? "application/octet-stream", ContentEncoding = ContentEncoding };
                shown = bytes;
                break;
            default:
                var json = PowerShellJson.ToJsonNode(body)?.ToJsonString(new JsonSerializerOptions { WriteIndented = false }) ?? "null";
                message = new TelemetryMessage(Encoding.UTF8.GetBytes(json)) { ContentType = ContentType ?? "application/json", ContentEncoding = ContentEncoding ?? "utf-8" };
                shown = json;
                break;
        }

        message.MessageId = MessageId;
        message.CorrelationId = CorrelationId;
        message.CreationTime = CreationTime;
        if (Property is not null)
        {
            foreach (DictionaryEntry entry in Property)
            {
                var name = Convert.ToString(entry.Key, CultureInfo.InvariantCulture);
                if (string.IsNullOrEmpty(name))
                {
                    throw new IoTHubMqttException("PropertyNameEmpty", IoTHubErrorKind.InvalidArgument, "A property name is empty.", null, "Property");
                }

                var propertyValue = entry.Value is PSObject p ? p.BaseObject : entry.Value;
                message.Properties.Add(new(name, propertyValue switch
                {
                    null => null,
                    DateTime dt => dt.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture),
                    DateTimeOffset dto => dto.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture),
                    bool b => b ? "true" : "false",
                    IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                    _ => propertyValue.ToString(),
                }));
            }
        }

        // Checks reserved names now, so a bad property is an error for this message and not a failed publish.
        if (message.Properties.Count > 0)
        {
            _ = message.PropertyBagEntries().Count();
        }
        return (message, shown);
    }
}
