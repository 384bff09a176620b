namespace IoTHubDevice.Logic.Device
{
    /// <summary>The board: LED, reset, and the facts the device reports about itself.</summary>
    public interface IDeviceHardware
    {
        /// <summary>Blinks the status LED <paramref name="count"/> times (may return before the blinking ends).</summary>
        void Blink(int count);

        /// <summary>Restarts the device; on the board this does not return.</summary>
        void Reboot();

        /// <summary>Why the device last started, e.g. "powerOn", "deepSleepTimer".</summary>
        string ResetReason { get; }

        /// <summary>Wi-Fi signal in dBm, or 0 when unknown.</summary>
        int Rssi { get; }
    }
}
