using System.Management.Automation;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service.Registry;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Creates devices in the hub's registry, from parameters or from pipeline objects such as CSV rows, in bulk calls of up to 100.</para>
/// </summary>
[Cmdlet(VerbsCommon.New, "IoTHubDevice", SupportsShouldProcess = true)]
[OutputType(typeof(IoTHubDevice))]
public sealed class NewIoTHubDeviceCommand : RegistryWriterCmdlet
{
    private int row;

    /// <summary>The device id; from the pipeline as a string, or by property name (DeviceId, Id, SerialNumber).</summary>
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Id", "SerialNumber")]
    [AllowEmptyString]
    [AllowNull]
    public string? DeviceId { get; set; }

    /// <summary>enabled (default) or disabled.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowEmptyString]
    [AllowNull]
    public string? Status { get; set; }

    /// <summary>sas (default: symmetric keys) or selfSigned (X.509 thumbprints).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowEmptyString]
    [AllowNull]
    public string? AuthenticationType { get; set; }

    /// <summary>The primary key (base64); a random one is made when left out. A SecureString is accepted too.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [SecretTransformation]
    [AllowEmptyString]
    [AllowNull]
    public string? PrimaryKey { get; set; }

    /// <summary>The secondary key (base64); a random one is made when left out.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [SecretTransformation]
    [AllowEmptyString]
    [AllowNull]
    public string? SecondaryKey { get; set; }

    /// <summary>The SHA-1 or SHA-256 thumbprint of the device certificate (selfSigned).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowEmptyString]
    [AllowNull]
    public string? PrimaryThumbprint { get; set; }

    /// <summary>A second certificate thumbprint (selfSigned).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowEmptyString]
    [AllowNull]
    public string? SecondaryThumbprint { get; set; }

    /// <summary>Tags for the device's twin: a hashtable, an object or a JSON object string (a CSV column). Applied to new devices, and with -Force to existing ones.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("Tags")]
    [AllowNull]
    public object? Tag { get; set; }

    /// <summary>Update a device that already exists to match the input (status, authentication; keys not given are kept).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    private protected override (int Id, string Activity, string Verb) Progress => (1, "New-IoTHubDevice", "done");

    private protected override DeviceRegistryWriterOptions WriterOptions() =>
        new() { Mode = Force ? RegistryWriteMode.CreateOrUpdate : RegistryWriteMode.Create, MaxParallelCalls = ThrottleLimit };

    protected override void ProcessRecord()
    {
        row++;
        JsonNode? tags;
        try
        {
            tags = PowerShellJson.ToJsonNode(Tag);
        }
        catch (IoTHubMqttException)
        {
            tags = new JsonArray(); // not a JSON object: the core names the row with InvalidTags
        }

        Add(new DeviceInput
        {
            DeviceId = DeviceId,
            Status = Status,
            AuthenticationType = AuthenticationType,
            PrimaryKey = PrimaryKey,
            SecondaryKey = SecondaryKey,
            PrimaryThumbprint = PrimaryThumbprint,
            SecondaryThumbprint = SecondaryThumbprint,
            Tags = tags,
        }, id => ShouldProcess(id, Force ? "Create or update device" : "Create device"));
    }

    private protected override void WriteOutcome(DeviceOutcome outcome) =>
        WriteObject(new IoTHubDevice(outcome.Device!, outcome.Action.ToString()) { Tags = PowerShellJson.ToPowerShell(outcome.Device!.Tags) });
}
