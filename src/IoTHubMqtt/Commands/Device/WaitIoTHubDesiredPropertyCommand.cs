using System.Management.Automation;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// <para type="synopsis">Waits for desired-property changes pushed by the service.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Wait, "IoTHubDesiredProperty", DefaultParameterSetName = ConnectionSet)]
[OutputType(typeof(IoTHubDesiredPropertyChange))]
public sealed class WaitIoTHubDesiredPropertyCommand : DeviceCmdlet
{
    /// <summary>Only changes that touch one of these top-level properties count; any change when left out.</summary>
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <summary>How many changes to wait for.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int Count { get; set; } = 1;

    /// <summary>Seconds to wait in all; a timeout is an error (DesiredPropertyWaitTimedOut).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int Timeout { get; set; } = 60;

    protected override void ProcessRecord()
    {
        var matched = ReceiveUntil(Count, TimeSpan.FromSeconds(Timeout), Client.ReceiveDesiredPropertiesAsync, update =>
        {
            var change = new IoTHubDesiredPropertyChange(Device.DeviceId, update);
            if (Name is not null && !change.Names.Any(n => Name.Contains(n, StringComparer.Ordinal)))
            {
                WriteVerbose($"Skipped desired v{change.Version} ({string.Join(", ", change.Names)}).");
                return false;
            }

            WriteObject(change);
            return true;
        });
        if (matched < Count)
        {
            WriteError(new IoTHubMqttException(ErrorIds.DesiredPropertyWaitTimedOut,
                $"{matched} of {Count} desired-property change(s) arrived within {Timeout} s.",
                "Wait longer with -Timeout, or check that the service patches this device's desired properties.", Device.DeviceId));
        }
    }
}
