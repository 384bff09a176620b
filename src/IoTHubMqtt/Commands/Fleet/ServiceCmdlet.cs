using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// Base of the service (fleet) cmdlets: -Connection from Connect-IoTHubService (or the session default), or
/// -ConnectionString (a policy string) with -Port and -CaCertificatePath for one-off use.
/// </summary>
public abstract class ServiceCmdlet : IoTHubCmdlet
{
    private IoTHubServiceConnection? oneOff;
    private IoTHubServiceConnection? active;
    private readonly Action<string> logSink;

    protected ServiceCmdlet() => logSink = VerboseSink;

    /// <summary>The service connection from Connect-IoTHubService; the last one made in this session when left out.</summary>
    [Parameter]
    [ValidateNotNull]
    public IoTHubServiceConnection? Connection { get; set; }

    /// <summary>A shared access policy connection string (iothubowner or another policy) for this call only.</summary>
    [Parameter]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string? ConnectionString { get; set; }

    /// <summary>With -ConnectionString: a PEM file of extra CA certificates to trust (the emulator's CA).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CaCertificatePath { get; set; }

    /// <summary>With -ConnectionString: the HTTPS port when not 443 (the emulator's HttpsPort).</summary>
    [Parameter]
    [ValidateRange(1, 65535)]
    public int Port { get; set; }

    protected IoTHubServiceConnection ServiceConnection => active ?? throw new InvalidOperationException("BeginProcessing resolves the connection.");

    protected IoTHubServiceClient Service => ServiceConnection.Client;

    protected override void BeginProcessing()
    {
        if (ConnectionString is not null)
        {
            if (Connection is not null)
            {
                ThrowTerminatingError(InvalidArgument(ErrorIds.ServiceConnectionConflict, "Pass either -Connection or -ConnectionString, not both.", null, "ConnectionString"));
            }

            Terminating(() =>
            {
                var path = CaCertificatePath is null ? null : GetUnresolvedProviderPathFromPSPath(CaCertificatePath);
                oneOff = new IoTHubServiceConnection(log => new IoTHubServiceClient(new IoTHubServiceOptions
                {
                    ConnectionString = ConnectionString,
                    Port = Port == 0 ? null : Port,
                    CaCertificatePath = path,
                    Log = log,
                }))
                { CaCertificatePath = path };
            });
            active = oneOff;
        }
        else
        {
            active = Connection ?? DefaultServiceConnection.Current;
            if (active is null)
            {
                ThrowTerminatingError(new IoTHubMqttException(ErrorIds.NoServiceConnection,
                    "There is no service connection.", "Run Connect-IoTHubService first, or pass -Connection or -ConnectionString."));
            }
        }

        active!.AttachLog(logSink);
    }

    protected override void Dispose(bool disposing)
    {
        active?.DetachLog(logSink);
        if (disposing && oneOff is not null)
        {
            oneOff.Client.Dispose();
            oneOff = null;
        }

        base.Dispose(disposing);
    }
}
