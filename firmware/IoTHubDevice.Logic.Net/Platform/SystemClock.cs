using System;
using System.Diagnostics;
using IoTHubDevice.Logic.Device;

namespace IoTHubDevice.Logic.Platform
{
    /// <summary>The machine's UTC clock and a stopwatch for uptime.</summary>
    public sealed class SystemClock : IClock
    {
        private readonly Stopwatch uptime = Stopwatch.StartNew();

        public long UnixTimeSeconds
        {
            get { return DateTimeOffset.UtcNow.ToUnixTimeSeconds(); }
        }

        public long UptimeMilliseconds
        {
            get { return uptime.ElapsedMilliseconds; }
        }
    }
}
