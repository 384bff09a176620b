using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Emulator;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Connects to a hub's service API with a shared access policy, for the fleet cmdlets.</para>
/// </summary>
[Cmdlet(VerbsCommunications.Connect, "IoTHubService", DefaultParameterSetName = ConnectionStringSet)]
[OutputType(typeof(IoTHubServiceConnection))]
public sealed class ConnectIoTHubServiceCommand : IoTHubCmdlet
{
    private const string ConnectionStringSet = "ConnectionString";
    private const string EmulatorSet = "Emulator";

    /// <summary>A shared access policy connection string: HostName=…;SharedAccessKeyName=…;SharedAccessKey=….</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ConnectionStringSet)]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>The HTTPS port when not 443.</summary>
    [Parameter(ParameterSetName = ConnectionStringSet)]
    [ValidateRange(1, 65535)]
    public int Port { get; set; }

    /// <summary>The AMQP port (C2D messages, feedback, telemetry) when not 5671; for the emulator it is found through its HTTPS API.</summary>
    [Parameter(ParameterSetName = ConnectionStringSet)]
    [ValidateRange(1, 65535)]
    public int AmqpPort { get; set; }

    /// <summary>A PEM file of extra CA certificates to trust.</summary>
    [Parameter(ParameterSetName = ConnectionStringSet)]
    [ValidateNotNullOrEmpty]
    public string? CaCertificatePath { get; set; }

    /// <summary>An emulator from Start-IoTHubEmulator: its owner connection string, HTTPS port and CA are used.</summary>
    [Parameter(Mandatory = true, ParameterSetName = EmulatorSet, ValueFromPipeline = true)]
    [ValidateNotNull]
    public IoTHubEmulator? Emulator { get; set; }

    /// <summary>Lifetime of each policy token; a new one is signed when 15 % of it is left. Default: one hour.</summary>
    [Parameter]
    public TimeSpan TokenTimeToLive { get; set; } = TimeSpan.FromHours(1);

    protected override void ProcessRecord()
    {
        if (TokenTimeToLive < TimeSpan.FromSeconds(10))
        {
            ThrowTerminatingError(InvalidArgument(ErrorIds.TimeToLiveTooShort, "-TokenTimeToLive must be at least 10 seconds.", null, "TokenTimeToLive"));
        }

        IoTHubServiceConnection? connection = null;
        Terminating(() =>
        {
            if (Emulator is { } emulator)
            {
                connection = new IoTHubServiceConnection(log => new IoTHubServiceClient(new IoTHubServiceOptions
                {
                    ConnectionString = emulator.OwnerConnectionString,
                    Port = emulator.HttpsPort,
                    AmqpPort = emulator.AmqpPort == 0 ? null : emulator.AmqpPort,
                    CaCertificatePath = emulator.CaCertificatePath,
                    TokenTimeToLive = TokenTimeToLive,
                    IsEmulator = true,
                    Log = log,
                }))
                { DeviceMqttPort = emulator.MqttTlsPort, CaCertificatePath = emulator.CaCertificatePath };
            }
            else
            {
                var path = CaCertificatePath is null ? null : GetUnresolvedProviderPathFromPSPath(CaCertificatePath);
                connection = new IoTHubServiceConnection(log => new IoTHubServiceClient(new IoTHubServiceOptions
                {
                    ConnectionString = ConnectionString,
                    Port = Port == 0 ? null : Port,
                    AmqpPort = AmqpPort == 0 ? null : AmqpPort,
                    CaCertificatePath = path,
                    TokenTimeToLive = TokenTimeToLive,
                    Log = log,
                }))
                { CaCertificatePath = path };
            }
        });

        DefaultServiceConnection.Set(connection!);
        WriteVerbose($"Service connection to {connection} is the session default.");
        WriteObject(connection);
    }
}
