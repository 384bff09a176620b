using System.Management.Automation;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// <para type="synopsis">Receives cloud-to-device messages, completing each after it is written to the pipeline.</para>
/// </summary>
[Cmdlet(VerbsCommunications.Receive, "IoTHubMessage", DefaultParameterSetName = ConnectionSet)]
[OutputType(typeof(IoTHubReceivedMessage))]
public sealed class ReceiveIoTHubMessageCommand : DeviceCmdlet
{
    /// <summary>How many messages to wait for; the cmdlet returns when this many arrived or at the timeout.</summary>
    [Parameter(Position = 0)]
    [ValidateRange(1, int.MaxValue)]
    public int Count { get; set; } = 1;

    /// <summary>Seconds to wait in all; 0 returns only messages that have already arrived.</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int Timeout { get; set; } = 30;

    /// <summary>Leave messages uncompleted: the hub delivers them again after its lock time (one minute).</summary>
    [Parameter]
    public SwitchParameter NoComplete { get; set; }

    protected override void ProcessRecord()
    {
        var received = ReceiveUntil(Count, TimeSpan.FromSeconds(Timeout), Client.ReceiveCloudToDeviceAsync, message =>
        {
            WriteObject(new IoTHubReceivedMessage(Device.DeviceId, message));
            if (!NoComplete)
            {
                try
                {
                    Run(ct => message.CompleteAsync(ct));
                }
                catch (Exception ex) when (ErrorMapper.IsMappable(ex))
                {
                    WriteError(ex, message.MessageId);
                }
            }

            return true;
        });
        WriteVerbose($"Received {received} message(s).");
    }
}
