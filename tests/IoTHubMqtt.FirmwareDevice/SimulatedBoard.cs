using System.Collections.Concurrent;
using IoTHubDevice.Logic.Device;

namespace IoTHubMqtt.FirmwareDevice;

/// <summary>The board under a simulated device: records blinks and reboot requests instead of driving pins.</summary>
public sealed class SimulatedBoard : IDeviceHardware
{
    private int reboots;

    public ConcurrentQueue<int> Blinks { get; } = new();

    /// <summary>How often the app asked to restart the device.</summary>
    public int Reboots => Volatile.Read(ref reboots);

    public string ResetReason { get; set; } = "powerOnOrReset";

    public int Rssi { get; set; } = -58;

    public void Blink(int count) => Blinks.Enqueue(count);

    public void Reboot() => Interlocked.Increment(ref reboots);
}
