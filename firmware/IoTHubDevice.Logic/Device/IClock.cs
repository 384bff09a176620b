namespace IoTHubDevice.Logic.Device
{
    /// <summary>Time as the app sees it: the wall clock (set by SNTP on the board) and a monotonic uptime.</summary>
    public interface IClock
    {
        /// <summary>Seconds since 1970-01-01 UTC. Before SNTP syncs, an ESP32 reports a time in 2000.</summary>
        long UnixTimeSeconds { get; }

        /// <summary>Milliseconds since boot; never goes back.</summary>
        long UptimeMilliseconds { get; }
    }
}
