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
    private const int ProgressId = 0x5E4D;
    private static readonly JsonSerializerOptions CompactJson = new() { WriteIndented = false };

    // Sent messages in the order they were sent, until their acknowledgement is written (at most the outbox's worth).
    private readonly Queue<(Task<TelemetrySendResult> Acknowledged, TelemetryMessage Message, object? Body, byte[]? Buffer)> pending = new();
    private bool verbose;
    private bool bodyFromCommandLine;
    private string? shouldProcessText;
    private long total;
    private long sent;
    private long acknowledged;
    private long started;
    private long lastProgress;

    /// <summary>
    /// The body: a string (text/plain), bytes (application/octet-stream), or any other object or hashtable (JSON).
    /// From the pipeline, one message an item; given as a parameter, an array is one message an element.
    /// </summary>
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

    /// <summary>How many messages the pipeline brings, when known: a progress bar then shows the send. Not a limit.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int Count { get; set; }

    /// <summary>Return a record of each message once the hub has acknowledged it.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        verbose = IsVerbose;
        total = Count;
        bodyFromCommandLine = MyInvocation.BoundParameters.ContainsKey(nameof(Body));
        started = Environment.TickCount64;
    }

    protected override void ProcessRecord()
    {
        var value = Body is PSObject pso && pso.BaseObject is not PSCustomObject ? pso.BaseObject : Body;
        if (bodyFromCommandLine && value is not (byte[] or string) && LanguagePrimitives.GetEnumerable(value) is { } items)
        {
            // -Body @(...): every element is a message, and how many there are is known.
            if (value is ICollection collection && total == 0)
            {
                total = collection.Count;
            }

            foreach (var item in items)
            {
                Send(item);
            }

            return;
        }

        Send(Body);
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
        if (total > 0)
        {
            WriteProgress(new ProgressRecord(ProgressId, "Send-IoTHubMessage", "Done") { RecordType = ProgressRecordType.Completed });
        }
    }

    private void Send(object? body)
    {
        if (body is null)
        {
            WriteError(InvalidArgument(ErrorIds.MessageBodyNull, "The message body is null.", "Pipe or pass a string, bytes or an object."));
            return;
        }

        TelemetryMessage message;
        object? shownBody;
        byte[]? buffer;
        try
        {
            (message, shownBody, buffer) = Build(body);
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
            Give(buffer);
            return;
        }

        try
        {
            // One call into the core: it returns at once while the outbox has room, and waits (here, pumping verbose
            // lines, Ctrl+C ending the wait) while it is full.
            var accepted = Client.Telemetry.SendAsync(message, StopToken);
            var acknowledgement = accepted.IsCompletedSuccessfully ? accepted.Result : Run(_ => accepted.AsTask());
            pending.Enqueue((acknowledgement, message, shownBody, buffer));
            sent++;
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            Give(buffer);
            WriteError(ex, message.MessageId);
        }

        Harvest(wait: false);
    }

    /// <summary>Writes the acknowledged messages in the order they were sent, and the progress when the total is known.</summary>
    private void Harvest(bool wait)
    {
        DrainPosted();
        while (pending.Count > 0 && (wait || pending.Peek().Acknowledged.IsCompleted))
        {
            var (acknowledgement, message, body, buffer) = pending.Dequeue();
            Give(buffer);
            if (acknowledgement.IsCompletedSuccessfully)
            {
                acknowledged++;
                var result = acknowledgement.Result;
                if (verbose)
                {
                    WriteVerbose($"Sent {message.Payload.Length} bytes{(message.MessageId is null ? "" : $" ({message.MessageId})")}; acknowledged after {result.Attempts} attempt(s).");
                }

                if (PassThru)
                {
                    WriteObject(Record(message, body, result));
                }
            }
            else if (acknowledgement.IsFaulted)
            {
                WriteError(acknowledgement.Exception!.InnerException ?? acknowledgement.Exception, message.MessageId);
            }
        }

        if (total > 0 && (pending.Count == 0 || Environment.TickCount64 - lastProgress >= 200))
        {
            lastProgress = Environment.TickCount64;
            var seconds = Math.Max(0.001, (lastProgress - started) / 1000.0);
            WriteProgress(new ProgressRecord(ProgressId, "Send-IoTHubMessage", $"{acknowledged} of {total} acknowledged ({acknowledged / seconds:0} msgs/s)")
            {
                PercentComplete = (int)Math.Min(100, 100 * acknowledged / total),
                CurrentOperation = $"{sent - acknowledged} waiting for the hub",
            });
        }
    }

    protected override void Dispose(bool disposing)
    {
        // Stopped (Ctrl+C) or failed with messages still unacknowledged: they go on in the client, and a failure of
        // one of them has no one left to report it to.
        foreach (var (acknowledgement, _, _, _) in pending)
        {
            _ = acknowledgement.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        pending.Clear();
        base.Dispose(disposing);
    }

    private IoTHubSentMessage Record(TelemetryMessage message, object? body, TelemetrySendResult result)
    {
        var properties = new OrderedDictionary(StringComparer.Ordinal);
        foreach (var (name, value) in message.Properties)
        {
            properties[name] = value;
        }

        return new IoTHubSentMessage
        {
            DeviceId = Device.DeviceId,
            MessageId = message.MessageId,
            CorrelationId = message.CorrelationId,
            ContentType = message.ContentType,
            ContentEncoding = message.ContentEncoding,
            Size = message.Payload.Length,
            Properties = properties,
            Body = body,
            AcknowledgedAt = QoS == 0 ? null : result.AcknowledgedAt,
            Attempts = result.Attempts,
        };
    }

    private void Give(byte[]? buffer)
    {
        if (buffer is not null)
        {
            PayloadBuffers.Return(buffer);
        }
    }

    /// <summary>A text body as UTF-8, in a reused buffer when it is large (returned once its message is finished).</summary>
    private TelemetryMessage Encode(string text, out byte[]? buffer)
    {
        var length = Encoding.UTF8.GetByteCount(text);
        if (length < PayloadBuffers.PooledFrom)
        {
            buffer = null;
            return new TelemetryMessage(Encoding.UTF8.GetBytes(text));
        }

        buffer = PayloadBuffers.Rent(length);
        var written = Encoding.UTF8.GetBytes(text, buffer);
        return new TelemetryMessage(buffer.AsMemory(0, written));
    }

    private (TelemetryMessage Message, object? ShownBody, byte[]? Buffer) Build(object body)
    {
        var value = body is PSObject pso && pso.BaseObject is not PSCustomObject ? pso.BaseObject : body;
        TelemetryMessage message;
        object? shown;
        byte[]? buffer = null;
        switch (value)
        {
            case string text:
                message = Encode(text, out buffer);
                message.ContentType = ContentType ?? "text/plain";
                message.ContentEncoding = ContentEncoding ?? "utf-8";
                shown = text;
                break;
            case byte[] bytes:
                message = new TelemetryMessage(bytes) { ContentType = ContentType ?? "application/octet-stream", ContentEncoding = ContentEncoding };
                shown = bytes;
                break;
            default:
                var json = PowerShellJson.ToJsonNode(body)?.ToJsonString(CompactJson) ?? "null";
                message = Encode(json, out buffer);
                message.ContentType = ContentType ?? "application/json";
                message.ContentEncoding = ContentEncoding ?? "utf-8";
                shown = json;
                break;
        }

        message.MessageId = MessageId;
        message.QualityOfService = QoS == 0 ? TelemetryQualityOfService.AtMostOnce : TelemetryQualityOfService.AtLeastOnce;
        message.CorrelationId = CorrelationId;
        message.CreationTime = CreationTime;
        if (Property is not null)
        {
            foreach (DictionaryEntry entry in Property)
            {
                var name = Convert.ToString(entry.Key, CultureInfo.InvariantCulture);
                if (string.IsNullOrEmpty(name))
                {
                    throw new IoTHubMqttException(ErrorIds.PropertyNameEmpty, "A property name is empty.", null, "Property");
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
        return (message, shown, buffer);
    }
}
