using System.Net;
using System.Security.Cryptography.X509Certificates;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Diagnostics;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// Everything a device client needs to connect. Build it from a connection string or set the fields;
/// <see cref="Validate"/> checks it before a connection is tried. A record: change a copy with <c>options with { … }</c>.
/// <see cref="ToString"/> shows no credential.
/// </summary>
public sealed record IoTHubDeviceClientOptions
{
    /// <summary>The hub host name the identity belongs to (used in the user name and the SAS resource).</summary>
    public required string HostName { get; init; }

    /// <summary>The host to connect to, when it differs from <see cref="HostName"/> (a gateway or the emulator).</summary>
    public string? ConnectHostName { get; init; }

    public required string DeviceId { get; init; }

    public string? ModuleId { get; init; }

    /// <summary>A base64 device or module key: tokens are created from it and renewed before they expire.</summary>
    public string? SharedAccessKey { get; init; }

    /// <summary>A ready SAS token, used as is (it cannot be renewed: the connection ends when it expires).</summary>
    public string? SharedAccessSignature { get; init; }

    /// <summary>An X.509 client certificate with its private key.</summary>
    public X509Certificate2? ClientCertificate { get; init; }

    public IoTHubTransport Transport { get; init; } = IoTHubTransport.Mqtt;

    /// <summary>The port; 8883 for MQTT, 443 for WebSockets, 1883 for plain MQTT when not set.</summary>
    public int? Port { get; init; }

    /// <summary>A PEM file of extra CA certificates to trust (the emulator's CA, a private gateway's root).</summary>
    public string? CaCertificatePath { get; init; }

    /// <summary>Trust the operating system's root store as well as the hub roots and <see cref="CaCertificatePath"/>.</summary>
    public bool UseSystemTrustStore { get; init; } = true;

    /// <summary>An HTTP proxy for the WebSocket transport (wss:// is tunnelled with CONNECT); only valid with <see cref="IoTHubTransport.WebSocket"/>.</summary>
    public IWebProxy? Proxy { get; init; }

    /// <summary>Lifetime of the tokens created from <see cref="SharedAccessKey"/>; renewed at <see cref="TokenRenewalFraction"/> of it.</summary>
    public TimeSpan TokenTimeToLive { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Renew when this fraction of the token's lifetime has passed (the SDKs renew with about 15 % left).</summary>
    public double TokenRenewalFraction { get; init; } = 0.85;

    public TimeSpan KeepAlive { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>False keeps C2D subscriptions and queued messages across reconnects.</summary>
    public bool CleanSession { get; init; }

    /// <summary>
    /// How many telemetry publishes may wait for their PUBACK at once. The telemetry outbox holds four times as many
    /// (and at most 4 MB waiting their turn): sending waits for room when it is full.
    /// </summary>
    public int MaxInFlight { get; init; } = 64;

    /// <summary>
    /// How long one operation may take: connecting, a twin request or method answer, a telemetry message waiting for
    /// a lost connection to come back, and the hub's silence while acknowledgements are due (then the client
    /// reconnects and sends the unacknowledged messages again).
    /// </summary>
    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan ReconnectInitialDelay { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan ReconnectMaxDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>IoT Plug and Play model id sent in the user name.</summary>
    public string? ModelId { get; init; }

    /// <summary>Product info sent as DeviceClientType.</summary>
    public string? ProductInfo { get; init; } = "IoTHubMqtt/" + typeof(IoTHubDeviceClientOptions).Assembly.GetName().Version?.ToString(3);

    /// <summary>Where diagnostics go (levelled; never a secret). Nothing is logged by default.</summary>
    public IIoTHubLogger Logger { get; init; } = IoTHubNullLogger.Instance;

    /// <summary>The clock of token lifetimes, renewal, backoff, timeouts and time stamps (a fake one in tests).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    public int EffectivePort => Port ?? Transport switch
    {
        IoTHubTransport.WebSocket => 443,
        IoTHubTransport.MqttNoTls => 1883,
        _ => 8883,
    };

    public string EffectiveConnectHost => ConnectHostName ?? HostName;

    public static IoTHubDeviceClientOptions FromConnectionString(string connectionString)
    {
        var cs = IoTHubConnectionString.Parse(connectionString);
        if (cs.Kind == ConnectionStringKind.Policy)
        {
            throw new IoTHubMqttException(ErrorIds.ConnectionStringNotDevice,
                $"The connection string for {cs} is a shared access policy string; a device or module connection string is needed.",
                "Use the device's connection string ('az iot hub device-identity connection-string show').");
        }

        return new IoTHubDeviceClientOptions
        {
            HostName = cs.HostName,
            ConnectHostName = cs.GatewayHostName,
            DeviceId = cs.DeviceId!,
            ModuleId = cs.ModuleId,
            SharedAccessKey = cs.SharedAccessKey,
            SharedAccessSignature = cs.SharedAccessSignature,
        };
    }

    public string ResourceUri => ModuleId is null ? SasResource.ForDevice(HostName, DeviceId) : SasResource.ForModule(HostName, DeviceId, ModuleId);

    public void Validate()
    {
        IdentityValidator.ThrowIfInvalidDeviceId(DeviceId);
        if (ModuleId is not null)
        {
            IdentityValidator.ThrowIfInvalidModuleId(ModuleId);
        }

        if (Uri.CheckHostName(HostName) is UriHostNameType.Unknown or UriHostNameType.Basic)
        {
            throw Invalid(ErrorIds.InvalidHostName, $"'{HostName}' is not a valid host name.", "Pass the hub's host name, e.g. myhub.azure-devices.net.");
        }

        var credentials = (SharedAccessKey is null ? 0 : 1) + (SharedAccessSignature is null ? 0 : 1) + (ClientCertificate is null ? 0 : 1);
        if (credentials != 1)
        {
            throw Invalid(credentials == 0 ? ErrorIds.CredentialMissing : ErrorIds.CredentialConflict,
                credentials == 0 ? "No credential: give a key, a SAS token or a client certificate." : "More than one credential: give only one of key, SAS token and client certificate.",
                "Use a device connection string, or one of -Key, -SasToken and -Certificate.");
        }

        if (SharedAccessKey is not null)
        {
            SharedAccessKeys.Decode(SharedAccessKey, nameof(SharedAccessKey));
        }

        if (SharedAccessSignature is not null)
        {
            var info = SasToken.Parse(SharedAccessSignature);
            if (info.Expiry <= (TimeProvider ?? TimeProvider.System).GetUtcNow())
            {
                throw new IoTHubMqttException(ErrorIds.SasTokenExpired,
                    $"The SAS token expired at {info.Expiry.UtcDateTime:u}.", "Create a new token, or connect with the device key so tokens are renewed.");
            }
        }

        if (ClientCertificate is { HasPrivateKey: false })
        {
            throw Invalid(ErrorIds.CertificateHasNoPrivateKey, "The client certificate has no private key.", "Load the certificate from a PFX or a PEM with its key.");
        }

        if (Proxy is not null && Transport != IoTHubTransport.WebSocket)
        {
            throw Invalid(ErrorIds.ProxyRequiresWebSocket, $"An HTTP proxy can only carry the WebSocket transport, not {Transport}.",
                "Add -Transport WebSocket (port 443), or leave out -Proxy.");
        }

        if (TokenTimeToLive < TimeSpan.FromSeconds(2))
        {
            throw Invalid(ErrorIds.TimeToLiveTooShort, "The token lifetime must be at least 2 seconds.", "Pass a longer -TokenTimeToLive.");
        }

        if (TokenRenewalFraction is <= 0.1 or >= 1.0)
        {
            throw Invalid(ErrorIds.InvalidRenewalFraction, "The renewal fraction must be between 0.1 and 1.", null);
        }

        if (MaxInFlight is < 1 or > 65535)
        {
            throw Invalid(ErrorIds.InvalidInFlightWindow, "The in-flight window must be between 1 and 65535.", null);
        }

        if (KeepAlive > TimeSpan.FromSeconds(1177))
        {
            throw Invalid(ErrorIds.KeepAliveTooLong, "IoT Hub allows a keep-alive of at most 1177 seconds.", "Pass -KeepAlive of 1177 seconds or less.");
        }

        if (OperationTimeout <= TimeSpan.Zero)
        {
            throw Invalid(ErrorIds.InvalidTimeout, "The operation timeout must be positive.", "Pass a -Timeout of at least one second.");
        }

        if (CaCertificatePath is not null && !File.Exists(CaCertificatePath))
        {
            throw new IoTHubMqttException(ErrorIds.CaCertificateNotFound,
                $"The CA certificate file '{CaCertificatePath}' does not exist.", "Pass the path of a PEM file.", CaCertificatePath);
        }
    }

    public override string ToString() => $"{DeviceId}{(ModuleId is null ? "" : "/" + ModuleId)}@{EffectiveConnectHost}:{EffectivePort} ({Transport})";

    private static IoTHubMqttException Invalid(string id, string message, string? action) => new(id, message, action);
}
