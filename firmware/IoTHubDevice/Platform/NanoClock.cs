using System;
using IoTHubDevice.Logic.Device;
using nanoFramework.Hardware.Esp32;

namespace IoTHubDevice.Platform
{
    /// <summary>Wall clock from DateTime.UtcNow (set by SNTP), uptime from the ESP32 high-resolution timer (microseconds since boot).</summary>
    internal sealed class NanoClock : IClock
    {
        private static readonly DateTime UnixEpoch = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc);

        public long UnixTimeSeconds
        {
            get { return (DateTime.UtcNow - UnixEpoch).Ticks / TimeSpan.TicksPerSecond; }
        }

        public long UptimeMilliseconds
        {
            get { return (long)(HighResTimer.GetCurrent() / 1000); }
        }
    }
}
