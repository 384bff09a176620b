using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// <para type="synopsis">Disconnects a device connection made by Connect-IoTHub.</para>
/// </summary>
[Cmdlet(VerbsCommunications.Disconnect, "IoTHub", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(IoTHubDeviceConnection))]
public sealed class DisconnectIoTHubCommand : IoTHubCmdlet
{
    /// <summary>The connection to close; the session default when left out.</summary>
    [Parameter(Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public IoTHubDeviceConnection? Connection { get; set; }

    /// <summary>Return the closed connection.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var connection = Connection ?? DefaultConnection.Current;
        if (connection is null)
        {
            WriteError(new IoTHubMqttException(ErrorIds.NoConnection,
                "There is no device connection to disconnect.", "Pass -Connection, or run Connect-IoTHub first."));
            return;
        }

        if (!ShouldProcess(connection.ToString(), "Disconnect"))
        {
            return;
        }

        connection.AttachLog(CoreLogger);
        Run(async ct => await connection.Client.DisconnectAsync(ct).ConfigureAwait(false));
        connection.DetachLog(CoreLogger);
        DefaultConnection.Clear(connection);
        WriteVerbose($"Disconnected {connection.DeviceId}.");
        if (PassThru)
        {
            WriteObject(connection);
        }
    }
}
