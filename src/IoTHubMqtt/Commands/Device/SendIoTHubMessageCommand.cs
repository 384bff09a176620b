using System.Collections;
using System.Management.Automation;
using System.Text.Json;
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
    private static readonly JsonSerializerOptions CompactJson = new() { WriteIndented = false };
    private static readonly Func<object, string> ToJson = body => PowerShellJson.ToJsonNode(body)?.ToJsonString(CompactJson) ?? "null";

    private TelemetryMessageTemplate template = new();

    // Sent messages in the order they were sent, until their acknowledgement is written (at most the outbox's worth).
    private SentMessageWriter sent = null!;
    private bool bodyFromCommandLine;

    // The text ShouldProcess shows for each device, made once: that overload formats a resource string a message.
    private string?[] shouldProcessTexts = [];

    /// <summary>
    /// The connection from Connect-IoTHub; the last one made in this session when left out. With several connections,
    /// every message is sent by each of them, in the order given: a fleet sends from one pipeline.
    /// </summary>
    [Parameter(ParameterSetName = ConnectionSet)]
    [ValidateNotNullOrEmpty]
    public new IoTHubDeviceConnection[]? Connection { get; set; }

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
        UseConnections(Connection);
        base.BeginProcessing();
        shouldProcessTexts = new string?[Devices.Count];
        bodyFromCommandLine = MyInvocation.BoundParameters.ContainsKey(nameof(Body));
        sent = new SentMessageWriter(PassThru, IsVerbose, (long)Count * Devices.Count);
        template = new TelemetryMessageTemplate(PropertyTable.Entries(Property))
        {
            ContentType = ContentType, ContentEncoding = ContentEncoding, MessageId = MessageId, CorrelationId = CorrelationId,
            CreationTime = CreationTime, QualityOfService = (TelemetryQualityOfService)QoS,
        };
    }

    protected override void ProcessRecord()
    {
        var value = Body is PSObject pso && pso.BaseObject is not PSCustomObject ? pso.BaseObject : Body;
        if (!bodyFromCommandLine || value is byte[] or string || LanguagePrimitives.GetEnumerable(value) is not { } items)
        {
            Send(Body);
            return;
        }

        // -Body @(...): every element is a message, and how many there are is known.
        sent.Total = sent.Total == 0 && value is ICollection collection ? (long)collection.Count * Devices.Count : sent.Total;
        foreach (var item in items)
        {
            Send(item);
        }
    }

    protected override void EndProcessing()
    {
        Run(sent.WhenAllAsync);
        DrainPosted();
        sent.Write(this, all: true);
        sent.Complete(this);
    }

    private void Send(object? body)
    {
        try
        {
            var message = template.From(body is PSObject pso && pso.BaseObject is not PSCustomObject ? pso.BaseObject : body, ToJson, out var shown, out var buffer);
            sent.SendFromEach(Devices, message, shown, buffer,
                i => ShouldProcess(shouldProcessTexts[i] ??= $"Performing the operation \"Send telemetry\" on target \"{Devices[i].DeviceId}\".", null, null),
                device =>
                {
                    // One call into the core: it returns at once while the outbox has room, and waits (here, pumping
                    // verbose lines, Ctrl+C ending the wait) while it is full.
                    var accepted = device.Client.Telemetry.SendAsync(message, StopToken);
                    return accepted.IsCompletedSuccessfully ? accepted.Result : Run(_ => accepted.AsTask());
                },
                ex => WriteError(ex, MessageId));
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            WriteError(ex, MessageId);
        }

        DrainPosted();
        sent.Write(this, all: false);
    }

    /// <summary>Stopped (Ctrl+C) or failed with messages unacknowledged: they go on in the client.</summary>
    protected override void Dispose(bool disposing)
    {
        sent?.Abandon();
        base.Dispose(disposing);
    }
}
