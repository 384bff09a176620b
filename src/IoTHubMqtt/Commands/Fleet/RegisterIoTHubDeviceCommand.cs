using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Provisioning;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Registers devices with the Device Provisioning Service (DPS) over MQTT and returns their assigned hub and connection string.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Register, "IoTHubDevice", DefaultParameterSetName = GroupSet, SupportsShouldProcess = true)]
[OutputType(typeof(IoTHubRegistration))]
public sealed class RegisterIoTHubDeviceCommand : IoTHubCmdlet
{
    private const string GroupSet = "Group";
    private const string IndividualSet = "Individual";
    private OrderedBatch<IoTHubRegistration>? batch;
    private Core.Service.ThrottleGate? pacing;
    private int row;

    /// <summary>The registration id (lowercase); from the pipeline by value or property name (RegistrationId, DeviceId, Id, SerialNumber).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("DeviceId", "Id", "SerialNumber")]
    [AllowEmptyString]
    public string RegistrationId { get; set; } = string.Empty;

    /// <summary>The DPS ID scope (the emulator's IdScope).</summary>
    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string IdScope { get; set; } = string.Empty;

    /// <summary>The enrollment group's key: each device's key is derived from it and its registration id. A SecureString is accepted too.</summary>
    [Parameter(Mandatory = true, ParameterSetName = GroupSet)]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string GroupKey { get; set; } = string.Empty;

    /// <summary>The device's own key (individual enrollment); from the pipeline by property name.</summary>
    [Parameter(Mandatory = true, ParameterSetName = IndividualSet, ValueFromPipelineByPropertyName = true)]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string SymmetricKey { get; set; } = string.Empty;

    /// <summary>The DPS host. Default: global.azure-devices-provisioning.net; localhost for the emulator.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ProvisioningHost { get; set; } = DpsRegistrationOptions.GlobalEndpoint;

    /// <summary>The DPS MQTT/TLS port. Default 8883; the emulator's DpsPort.</summary>
    [Parameter]
    [ValidateRange(1, 65535)]
    public int Port { get; set; } = 8883;

    /// <summary>A PEM file of extra CA certificates to trust (the emulator's CaCertificatePath).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CaCertificatePath { get; set; }

    /// <summary>Custom data for the registration request (a hashtable or object, sent as JSON).</summary>
    [Parameter]
    public object? Payload { get; set; }

    /// <summary>Seconds for each registration, polling included. Default 60.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int Timeout { get; set; } = 60;

    /// <summary>
    /// How many registrations run at the same time. Default 128: each waits the retry-after DPS gives before its status poll,
    /// so many run at once; when DPS throttles (429), all of them wait as long as it asked.
    /// </summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 128;

    protected override void BeginProcessing()
    {
        batch = new OrderedBatch<IoTHubRegistration>(ThrottleLimit);
        pacing = new Core.Service.ThrottleGate(TimeProvider.System);
    }

    protected override void ProcessRecord()
    {
        row++;
        DpsRegistrationOptions options;
        try
        {
            var id = DpsRegistrationOptions.RegistrationIdOf(RegistrationId, row);
            if (!ShouldProcess(id, "Register with DPS"))
            {
                return;
            }

            options = new DpsRegistrationOptions
            {
                IdScope = IdScope,
                RegistrationId = id,
                GroupKey = ParameterSetName == GroupSet ? GroupKey : null,
                SymmetricKey = ParameterSetName == IndividualSet ? SymmetricKey : null,
                ProvisioningHost = ProvisioningHost,
                Port = Port,
                CaCertificatePath = CaCertificatePath is null ? null : GetUnresolvedProviderPathFromPSPath(CaCertificatePath),
                Payload = Payload is null ? null : PowerShellJson.ToJsonNode(Payload),
                Timeout = TimeSpan.FromSeconds(Timeout),
                Log = VerboseSink,
                Pacing = pacing,
            };
            options.DeviceKey(); // validates id, scope and key now, in input order
        }
        catch (IoTHubMqttException ex) when (ex.ErrorId is ErrorIds.KeyNotBase64 or ErrorIds.KeyEmpty or ErrorIds.InvalidIdScope or ErrorIds.CaCertificateInvalid)
        {
            ThrowTerminatingError(ex, ex.Target);
            return;
        }
        catch (IoTHubMqttException ex)
        {
            batch!.AddFailed(ex.Target ?? $"input {row}", ex);
            WriteReady();
            return;
        }

        var registrationId = options.RegistrationId;
        batch!.Add(registrationId, async ct => new IoTHubRegistration(await DpsClient.RegisterAssignedAsync(options, ct).ConfigureAwait(false)), StopToken);
        WriteReady();
    }

    protected override void EndProcessing()
    {
        FinishBatch(batch!, BatchProgress);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            batch?.Dispose();
        }

        base.Dispose(disposing);
    }

    private static readonly (int Id, string Activity, string Noun) BatchProgress = (3, "Register-IoTHubDevice", "registrations");

    private void WriteReady() => WriteReady(batch!, BatchProgress);
}
