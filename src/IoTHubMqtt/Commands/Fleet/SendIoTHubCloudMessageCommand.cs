using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Text;
using IoTHubMqtt.Completion;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Sends a cloud-to-device message to devices.</para>
/// </summary>
[Cmdlet(VerbsCommunications.Send, "IoTHubCloudMessage", SupportsShouldProcess = true)]
[OutputType(typeof(IoTHubCloudMessageReceipt))]
public sealed class SendIoTHubCloudMessageCommand : ServiceCmdlet
{
    private byte[]? body;
    private string? contentType;
    private Dictionary<string, string>? properties;

    /// <summary>The device to send to; from the pipeline by value or property name.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DeviceIdCompleter))]
    public string DeviceId { get; set; } = string.Empty;

    /// <summary>The body: a string (UTF-8), a byte array, or a hashtable/object (sent as JSON).</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [AllowEmptyString]
    public object Message { get; set; } = string.Empty;

    /// <summary>Application properties (a hashtable of names and values).</summary>
    [Parameter]
    public Hashtable? Property { get; set; }

    /// <summary>The message id; a new GUID when left out.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? MessageId { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CorrelationId { get; set; }

    /// <summary>The content type; application/json for a hashtable body.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ContentType { get; set; }

    /// <summary>How long the message may wait for the device before it expires. Default: the hub's (1 hour).</summary>
    [Parameter]
    public TimeSpan? TimeToLive { get; set; }

    /// <summary>Which delivery outcomes the hub reports as feedback: None (default), Positive, Negative or Full (any casing; sent lowercase, as the hub expects).</summary>
    [Parameter]
    [ValidateSet("None", "Positive", "Negative", "Full")]
    public string? Ack { get; set; }

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        if (TimeToLive is { } ttl && ttl <= TimeSpan.Zero)
        {
            ThrowTerminatingError(InvalidArgument(ErrorIds.TimeToLiveNotPositive, "-TimeToLive must be greater than zero.", null, "TimeToLive"));
        }

        var value = Message is PSObject pso ? pso.BaseObject : Message;
        switch (value)
        {
            case string text:
                body = Encoding.UTF8.GetBytes(text);
                break;
            case byte[] bytes:
                body = bytes;
                break;
            default:
                Terminating(() => body = Encoding.UTF8.GetBytes(PowerShellJson.ToJsonNode(value)?.ToJsonString() ?? "null"));
                contentType = "application/json";
                break;
        }

        properties = [];
        foreach (DictionaryEntry entry in Property ?? [])
        {
            properties[Convert.ToString(entry.Key, CultureInfo.InvariantCulture) ?? ""] = Convert.ToString(entry.Value is PSObject p ? p.BaseObject : entry.Value, CultureInfo.InvariantCulture) ?? "";
        }
    }

    protected override void ProcessRecord()
    {
        if (!ShouldProcess(DeviceId, "Send cloud-to-device message"))
        {
            return;
        }

        var expiry = TimeToLive is { } ttl ? DateTimeOffset.UtcNow + ttl : (DateTimeOffset?)null;
        var message = new CloudMessage
        {
            Body = body!,
            MessageId = MessageId,
            CorrelationId = CorrelationId,
            ContentType = ContentType ?? contentType,
            Ack = Ack?.ToLowerInvariant(),
            Expiry = expiry,
            Properties = properties!,
        };
        try
        {
            var id = DeviceId;
            var receipt = Run(ct => Service.SendCloudToDeviceAsync(id, message, ct));
            WriteObject(new IoTHubCloudMessageReceipt(receipt, Ack?.ToLowerInvariant(), expiry));
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            // Failures of the connection itself would fail every other device too.
            if ((ex as Core.Errors.IoTHubMqttException ?? ex.InnerException as Core.Errors.IoTHubMqttException) is { ErrorId: ErrorIds.IoTHubUnauthorized or ErrorIds.IoTHubConnectionFailed or ErrorIds.TlsAuthenticationFailed or ErrorIds.AmqpNotAvailable })
            {
                ThrowTerminatingError(ex, DeviceId);
            }

            WriteError(ex, DeviceId);
        }
    }
}
