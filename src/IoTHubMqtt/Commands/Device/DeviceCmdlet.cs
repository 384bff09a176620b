using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// Base of the device cmdlets: -Connection (or the session default from Connect-IoTHub), or -ConnectionString for
/// one-off use, which connects in BeginProcessing and disconnects when the cmdlet ends.
/// </summary>
public abstract class DeviceCmdlet : IoTHubCmdlet
{
    protected const string ConnectionSet = "Connection";
    protected const string ConnectionStringSet = "ConnectionString";

    private IoTHubDeviceConnection? oneOff;
    private Core.Diagnostics.IIoTHubLogger? attachedLogger;
    private IoTHubDeviceConnection[] others = [];

    /// <summary>The connection from Connect-IoTHub; the last one made in this session when left out.</summary>
    [Parameter(ParameterSetName = ConnectionSet)]
    [ValidateNotNull]
    public IoTHubDeviceConnection? Connection { get; set; }

    /// <summary>A device connection string: connect, act and disconnect in this one call.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ConnectionStringSet)]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>A PEM file of extra CA certificates to trust (the emulator's CA, a private gateway).</summary>
    [Parameter(ParameterSetName = ConnectionStringSet)]
    [ValidateNotNullOrEmpty]
    public string? CaCertificatePath { get; set; }

    /// <summary>The port to connect to, when not the transport's default.</summary>
    [Parameter(ParameterSetName = ConnectionStringSet)]
    [ValidateRange(1, 65535)]
    public int Port { get; set; }

    /// <summary>Mqtt (TLS, 8883), WebSocket (443) or MqttNoTls (the emulator's debug port).</summary>
    [Parameter(ParameterSetName = ConnectionStringSet)]
    [ValidateSet("Mqtt", "WebSocket", "MqttNoTls")]
    public string Transport { get; set; } = "Mqtt";

    /// <summary>With -ConnectionString and -Transport WebSocket: an HTTP proxy.</summary>
    [Parameter(ParameterSetName = ConnectionStringSet)]
    public Uri? Proxy { get; set; }

    /// <summary>The user and password for -Proxy.</summary>
    [Parameter(ParameterSetName = ConnectionStringSet)]
    [Credential]
    public PSCredential? ProxyCredential { get; set; }

    /// <summary>The connection this call works on.</summary>
    protected IoTHubDeviceConnection Device => oneOff ?? Connection ?? throw new InvalidOperationException("BeginProcessing resolves the connection.");

    protected IoTHubDeviceClient Client => Device.Client;

    /// <summary>Every connection this call works on: <see cref="Device"/>, then the others of a cmdlet given several.</summary>
    protected IReadOnlyList<IoTHubDeviceConnection> Devices { get; private set; } = [];

    /// <summary>
    /// For a cmdlet that takes several connections, before BeginProcessing: the first is <see cref="Device"/> (none: the
    /// session's default), and the log lines of all of them go to this cmdlet.
    /// </summary>
    protected void UseConnections(IoTHubDeviceConnection[]? connections)
    {
        Connection = connections?[0];
        others = connections?[1..] ?? [];
    }

    protected override void BeginProcessing()
    {
        if (ParameterSetName == ConnectionStringSet)
        {
            Terminating(() =>
            {
                var path = CaCertificatePath is null ? null : GetUnresolvedProviderPathFromPSPath(CaCertificatePath);
                oneOff = new IoTHubDeviceConnection(log => new IoTHubDeviceClient(DeviceConnectionSettings.Apply(
                    IoTHubDeviceClientOptions.FromConnectionString(ConnectionString), Transport, Port, path, Proxy, ProxyCredential) with { Logger = log }));
                oneOff.AttachLog(attachedLogger = CoreLogger);
                WriteVerbose($"Connecting {oneOff} for this call.");
                Run(ct => oneOff.Client.ConnectAsync(ct));
            });
            Devices = [oneOff!];
            return;
        }

        Connection ??= DefaultConnection.Current;
        if (Connection is null)
        {
            ThrowTerminatingError(new IoTHubMqttException(ErrorIds.NoConnection,
                "There is no device connection.", "Run Connect-IoTHub first, or pass -Connection or -ConnectionString."));
        }

        Connection!.AttachLog(attachedLogger = CoreLogger);
        Devices = [Connection, .. others];
        foreach (var other in others.Where(c => c != Connection))
        {
            other.AttachLog(attachedLogger);
        }
    }

    /// <summary>
    /// Receives items until <paramref name="handle"/> has accepted <paramref name="count"/> of them or the time is up
    /// (items already queued are still taken then); returns how many were accepted.
    /// </summary>
    protected int ReceiveUntil<T>(int count, TimeSpan timeout, Func<TimeSpan?, CancellationToken, Task<T?>> receive, Func<T, bool> handle)
        where T : class
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        var accepted = 0;
        while (accepted < count)
        {
            var remaining = deadline - DateTimeOffset.UtcNow;
            var item = Run(ct => receive(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, ct));
            if (item is null)
            {
                break;
            }

            if (handle(item))
            {
                accepted++;
            }
        }

        return accepted;
    }

    protected override void Dispose(bool disposing)
    {
        if (attachedLogger is not null)
        {
            foreach (var connection in Devices)
            {
                connection.DetachLog(attachedLogger);
            }

            attachedLogger = null;
        }

        if (disposing && oneOff is not null)
        {
            // One-off connections end with the cmdlet, also when it is stopped or fails.
            oneOff.Client.DisposeAsync().AsTask().GetAwaiter().GetResult();
            oneOff = null;
        }

        base.Dispose(disposing);
    }
}
