namespace IoTHubDevice.Logic.Device
{
    public enum DeviceState
    {
        /// <summary>The wall clock is not set yet (SNTP): tokens would be invalid, so the app does not connect.</summary>
        WaitingForTime = 0,

        /// <summary>Not connected; the next attempt is scheduled by the backoff.</summary>
        Disconnected = 1,

        /// <summary>Registering with the Device Provisioning Service.</summary>
        Provisioning = 2,

        /// <summary>Connected to the hub.</summary>
        Connected = 3,

        /// <summary>A reboot was requested; the app answers, then restarts the device.</summary>
        Rebooting = 4,
    }
}
