using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using IoTHubMqtt.Completion;
using IoTHubMqtt.Core.Diagnostics;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// <para type="synopsis">Connects a device or module to IoT Hub over MQTT and returns the connection.</para>
/// </summary>
[Cmdlet(VerbsCommunications.Connect, "IoTHub", DefaultParameterSetName = ConnectionStringSet)]
[OutputType(typeof(IoTHubDeviceConnection))]
public sealed class ConnectIoTHubCommand : IoTHubCmdlet
{
    private const string ConnectionStringSet = "ConnectionString";
    private const string KeySet = "Key";
    private const string SasTokenSet = "SasToken";
    private const string CertificateSet = "Certificate";

    /// <summary>A device or module connection string.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ConnectionStringSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>The hub's host name, e.g. myhub.azure-devices.net.</summary>
    [Parameter(Mandatory = true, ParameterSetName = KeySet, ValueFromPipelineByPropertyName = true)]
    [Parameter(Mandatory = true, ParameterSetName = SasTokenSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(Mandatory = true, ParameterSetName = CertificateSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string HostName { get; set; } = string.Empty;

    [Parameter(Mandatory = true, ParameterSetName = KeySet, ValueFromPipelineByPropertyName = true)]
    [Parameter(Mandatory = true, ParameterSetName = SasTokenSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(Mandatory = true, ParameterSetName = CertificateSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DeviceIdCompleter))]
    public string DeviceId { get; set; } = string.Empty;

    [Parameter(ParameterSetName = KeySet, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = SasTokenSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = CertificateSet, ValueFromPipelineByPropertyName = true)]
    public string? ModuleId { get; set; }

    /// <summary>The device's base64 key; tokens are made from it and renewed before they expire.</summary>
    [Parameter(Mandatory = true, ParameterSetName = KeySet, ValueFromPipelineByPropertyName = true)]
    [Alias("SharedAccessKey", "PrimaryKey")]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string? Key { get; set; }

    /// <summary>A ready SAS token; the connection ends when it expires.</summary>
    [Parameter(Mandatory = true, ParameterSetName = SasTokenSet)]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string? SasToken { get; set; }

    /// <summary>An X.509 client certificate with its private key.</summary>
    [Parameter(Mandatory = true, ParameterSetName = CertificateSet)]
    [ValidateNotNull]
    public X509Certificate2? Certificate { get; set; }

    /// <summary>Mqtt (TLS, port 8883), WebSocket (port 443) or MqttNoTls (the emulator's debug port).</summary>
    [Parameter]
    [ValidateSet("Mqtt", "WebSocket", "MqttNoTls")]
    public string Transport { get; set; } = "Mqtt";

    [Parameter]
    [ValidateRange(1, 65535)]
    public int Port { get; set; }

    /// <summary>Connect to this host instead of the hub (an IoT Edge gateway, the emulator).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? GatewayHostName { get; set; }

    /// <summary>A PEM file of extra CA certificates to trust.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CaCertificatePath { get; set; }

    /// <summary>An HTTP proxy for -Transport WebSocket.</summary>
    [Parameter]
    public Uri? Proxy { get; set; }

    [Parameter]
    [Credential]
    public PSCredential? ProxyCredential { get; set; }

    /// <summary>Lifetime of the SAS tokens made from -Key; they are renewed at 85 % of it.</summary>
    [Parameter]
    public TimeSpan TokenTimeToLive { get; set; } = TimeSpan.FromHours(1);

    /// <summary>MQTT keep-alive in seconds (at most 1177).</summary>
    [Parameter]
    [ValidateRange(5, 1177)]
    public int KeepAlive { get; set; } = 300;

    /// <summary>Start a clean session: queued C2D messages and subscriptions of an earlier session are dropped.</summary>
    [Parameter]
    public SwitchParameter CleanSession { get; set; }

    /// <summary>How many telemetry messages may wait for the hub's acknowledgement at once.</summary>
    [Parameter]
    [ValidateRange(1, 65535)]
    public int MaxInFlight { get; set; } = 64;

    /// <summary>Seconds one operation (connect, publish, twin request) may take.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int Timeout { get; set; } = 30;

    /// <summary>An IoT Plug and Play model id.</summary>
    [Parameter]
    public string? ModelId { get; set; }

    /// <summary>Don't make this connection the session default for the other device cmdlets.</summary>
    [Parameter]
    public SwitchParameter NoDefault { get; set; }

    protected override void ProcessRecord() => NonTerminating(() =>
    {
        var caPath = CaCertificatePath is null ? null : GetUnresolvedProviderPathFromPSPath(CaCertificatePath);
        var connection = Run(ct => IoTHubDeviceConnection.ConnectAsync(log => new IoTHubDeviceClient(Options(caPath, log)), CoreLogger, ct));
        if (!NoDefault)
        {
            DefaultConnection.Set(connection);
        }

        WriteObject(connection);
    }, DeviceId.Length > 0 ? DeviceId : null);

    private IoTHubDeviceClientOptions Options(string? caPath, IIoTHubLogger log)
    {
        var identity = ParameterSetName == ConnectionStringSet
            ? IoTHubDeviceClientOptions.FromConnectionString(ConnectionString)
            : new IoTHubDeviceClientOptions
            {
                HostName = HostName, DeviceId = DeviceId, ModuleId = string.IsNullOrEmpty(ModuleId) ? null : ModuleId,
                SharedAccessKey = Key, SharedAccessSignature = SasToken, ClientCertificate = Certificate,
            };
        return DeviceConnectionSettings.Apply(identity, Transport, Port, caPath, Proxy, ProxyCredential) with
        {
            ConnectHostName = GatewayHostName ?? identity.ConnectHostName, ModelId = ModelId, Logger = log, TokenTimeToLive = TokenTimeToLive,
            KeepAlive = TimeSpan.FromSeconds(KeepAlive), CleanSession = CleanSession, MaxInFlight = MaxInFlight, OperationTimeout = TimeSpan.FromSeconds(Timeout),
        };
    }
}
