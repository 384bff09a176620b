using System.Management.Automation;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// <para type="synopsis">Gets the device's twin (desired and reported properties) from the hub.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "IoTHubTwin", DefaultParameterSetName = ConnectionSet)]
[OutputType(typeof(IoTHubDeviceTwin))]
public sealed class GetIoTHubTwinCommand : DeviceCmdlet
{
    protected override void ProcessRecord()
    {
        var twin = Run(ct => Client.GetTwinAsync(ct));
        WriteObject(new IoTHubDeviceTwin(Device.DeviceId, twin));
    }
}
