using System.Management.Automation;
using System.Net;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Emulator;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Emulator;

/// <summary>
/// <para type="synopsis">Starts a local IoT Hub emulator in this process.</para>
/// <para type="description">Starts the embedded IoT Hub emulator: MQTT over TLS, MQTT over WebSockets and the service REST API over HTTPS, service-side AMQP over TLS,
/// and DPS over MQTT/TLS, all on the loopback address and on ports the system chooses unless given. Returns the emulator object with its host
/// name, ports, the CA certificate file clients must trust, and the owner connection string (hidden from the default view). With -DataPath,
/// devices, twins and undelivered cloud-to-device messages survive a restart. The emulator runs until Stop-IoTHubEmulator or until the
/// PowerShell process exits (SIGTERM and SIGHUP included: its temporary folder, CA key included, is deleted then too). With -Wait it serves
/// until Ctrl+C; with -EndpointPath it writes its endpoints, CA path and owner connection string to a JSON file (owner-only) for later steps of
/// a CI job.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "IoTHubEmulator", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(IoTHubEmulator))]
public sealed class StartIoTHubEmulatorCommand : IoTHubCmdlet
{
    /// <summary>The hub host name in connection strings, SAS resources and the server certificate. Default: localhost.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string HostName { get; set; } = "localhost";

    /// <summary>The IP address to listen on. Default: 127.0.0.1.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ListenAddress { get; set; } = "127.0.0.1";

    /// <summary>The MQTT over TLS port (the hub's 8883). 0, the default, lets the system choose.</summary>
    [Parameter]
    [ValidateRange(0, 65535)]
    public int MqttTlsPort { get; set; }

    /// <summary>Also listen for plain (unencrypted) MQTT on this port, for debugging. 0 lets the system choose.</summary>
    [Parameter]
    [ValidateRange(0, 65535)]
    public int? MqttPort { get; set; }

    /// <summary>The HTTPS port of the service REST API and of MQTT over WebSockets. 0, the default, lets the system choose.</summary>
    [Parameter]
    [ValidateRange(0, 65535)]
    public int HttpsPort { get; set; }

    /// <summary>The DPS (MQTT over TLS) port. 0, the default, lets the system choose.</summary>
    [Parameter]
    [ValidateRange(0, 65535)]
    public int DpsPort { get; set; }

    /// <summary>The service-side AMQP over TLS port (the hub's 5671: C2D send, telemetry read). 0, the default, lets the system choose; -1 turns it off.</summary>
    [Parameter]
    [ValidateRange(-1, 65535)]
    public int AmqpPort { get; set; }

    /// <summary>A folder for the certificates and the state database; state then survives a restart.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? DataPath { get; set; }

    /// <summary>A PFX file with the server certificate to use instead of generating a CA.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CertificatePath { get; set; }

    /// <summary>The password of the PFX file. A SecureString or PSCredential is accepted too.</summary>
    [Parameter]
    [SecretTransformation]
    public string? CertificatePassword { get; set; }

    /// <summary>The base64 primary key of the iothubowner policy; generated when not given. A SecureString is accepted too.</summary>
    [Parameter]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string? OwnerKey { get; set; }

    /// <summary>The DPS ID scope.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string IdScope { get; set; } = "0ne00EMU1A7";

    /// <summary>Service REST requests a second before the emulator answers 429; 0 means unlimited.</summary>
    [Parameter]
    [ValidateRange(0, 1000000)]
    public int ServiceRequestsPerSecond { get; set; } = 100;

    /// <summary>
    /// Apply this IoT Hub tier's documented operation throttles and the DPS rate limits (F1, B1, B2, B3, S1, S2, S3), answering
    /// over them as the hub does (429 with Retry-After). Left out: unthrottled. Replaces -ServiceRequestsPerSecond.
    /// </summary>
    /// <remarks>A string, not the emulator's enum: a value-typed property would load the emulator at Import-Module.</remarks>
    [Parameter]
    [ValidateSet("F1", "B1", "B2", "B3", "S1", "S2", "S3")]
    public string? Tier { get; set; }

    /// <summary>Units of -Tier (free: 1; B1, S1, B2, S2: up to 200; B3, S3: up to 10). Default 1.</summary>
    [Parameter]
    [ValidateRange(1, 200)]
    public int Units { get; set; } = 1;

    /// <summary>Serve until Ctrl+C (SIGINT) or SIGTERM, then stop the emulator and delete its temporary files.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    /// <summary>
    /// A JSON file to write the endpoints to (host name, ports, ID scope, CA path, owner connection string), readable by
    /// its owner only, for a later step of a CI job; deleted when the emulator stops.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? EndpointPath { get; set; }

    protected override void EndProcessing()
    {
        var address = Terminating(() => IPAddress.TryParse(ListenAddress, out var parsed) ? parsed
            : throw InvalidArgument(ErrorIds.EmulatorListenAddressInvalid, $"'{ListenAddress}' is not an IP address.", "Pass an address such as 127.0.0.1 or ::1.", ListenAddress));

        var ports = (MqttTlsPort == 0 ? "ports the system chooses" : $"MQTT/TLS port {MqttTlsPort}") + (Tier is null ? string.Empty : $", {Tier} x{Units}");
        if (!ShouldProcess($"IoT Hub emulator {HostName} on {address} ({ports}{(DataPath is null ? string.Empty : ", data in " + DataPath)})", "Start"))
        {
            return;
        }

        var options = new IoTHubEmulatorOptions
        {
            HostName = HostName, ListenAddress = address, MqttTlsPort = MqttTlsPort, MqttPort = MqttPort ?? -1, HttpsPort = HttpsPort, DpsPort = DpsPort, AmqpPort = AmqpPort,
            DataPath = PathOrNull(DataPath), Persist = DataPath is not null, CertificatePath = PathOrNull(CertificatePath), CertificatePassword = CertificatePassword,
            OwnerKey = OwnerKey, IdScope = IdScope, ServiceRequestsPerSecond = ServiceRequestsPerSecond, Tier = Tier is null ? null : Enum.Parse<IoTHubTier>(Tier, true), Units = Units,
        };
        var emulator = Terminating(() => RunWithProgress(0x4548, "Start-IoTHubEmulator", $"Starting the IoT Hub emulator {HostName}",
            token => EmulatorSession.StartAsync(options, VerboseSink, token)), HostName);
        if (EndpointPath is not null)
        {
            Terminating(() => EmulatorSession.PublishEndpoints(emulator, GetUnresolvedProviderPathFromPSPath(EndpointPath)));
        }

        if (!Wait)
        {
            WriteObject(emulator);
            return;
        }

        EmulatorSession.ServeUntil(emulator, StopToken, () => WriteObject(emulator), WriteVerbose);
    }

    private string? PathOrNull(string? path) => path is null ? null : GetUnresolvedProviderPathFromPSPath(path);
}
