using System.Management.Automation;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Credentials;

/// <summary>
/// <para type="synopsis">Derives the device key of a DPS group enrollment, or creates a new random device key.</para>
/// <para type="description">With -GroupKey and -RegistrationId, computes base64(HMAC-SHA256(groupKey, registrationId)) for each
/// registration id (from the pipeline too). Without them, creates a new random 256-bit key.</para>
/// </summary>
[Cmdlet(VerbsCommon.New, "IoTHubDeviceKey", DefaultParameterSetName = DeriveSet)]
[OutputType(typeof(DeviceKeyInfo))]
public sealed class NewIoTHubDeviceKeyCommand : IoTHubCmdlet
{
    private const string DeriveSet = "Derive";
    private const string RandomSet = "Random";

    /// <summary>The enrollment group's base64 primary or secondary key. A SecureString or PSCredential is accepted too.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = DeriveSet)]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string GroupKey { get; set; } = string.Empty;

    /// <summary>The DPS registration ids (lowercase) to derive keys for.</summary>
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = DeriveSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("DeviceId", "Id")]
    [ValidateNotNullOrEmpty]
    public string[] RegistrationId { get; set; } = [];

    /// <summary>Creates a new random key instead of deriving one.</summary>
    [Parameter(Mandatory = true, ParameterSetName = RandomSet)]
    public SwitchParameter Random { get; set; }

    /// <summary>How many random keys to create.</summary>
    [Parameter(ParameterSetName = RandomSet)]
    [ValidateRange(1, 100000)]
    public int Count { get; set; } = 1;

    protected override void ProcessRecord()
    {
        if (ParameterSetName == RandomSet)
        {
            for (var i = 0; i < Count; i++)
            {
                WriteObject(new DeviceKeyInfo(null, SharedAccessKeys.Generate()));
            }

            return;
        }

        // An invalid group key stops the whole call; an invalid registration id is an error for that id only.
        Terminating(() => SharedAccessKeys.Decode(GroupKey, nameof(GroupKey)));
        foreach (var id in RegistrationId)
        {
            try
            {
                WriteObject(new DeviceKeyInfo(id, SharedAccessKeys.DeriveDeviceKey(GroupKey, id)));
            }
            catch (Exception ex) when (ErrorMapper.IsMappable(ex))
            {
                WriteError(ex, id);
            }
        }
    }
}
