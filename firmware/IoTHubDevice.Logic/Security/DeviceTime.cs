namespace IoTHubDevice.Logic.Security
{
    /// <summary>
    /// Wall-clock rules for a device. An ESP32 starts with its clock at 2000-01-01 (946684800 s after the Unix epoch, the
    /// offset MicroPython ports add) until SNTP sets it; a token signed with that clock expired decades ago, so the device must
    /// not connect until the time is plausible.
    /// </summary>
    public static class DeviceTime
    {
        /// <summary>Seconds from 1970-01-01 to 2000-01-01, the epoch of embedded ports.</summary>
        public const long EmbeddedEpochOffset = 946684800;

        /// <summary>2024-01-01T00:00:00Z: any clock earlier than this has not been set by SNTP.</summary>
        public const long PlausibleAfter = 1704067200;

        public static bool IsPlausible(long unixSeconds)
        {
            return unixSeconds >= PlausibleAfter;
        }

        /// <summary>Converts seconds since 2000-01-01 (embedded epoch) to Unix seconds.</summary>
        public static long FromEmbeddedEpoch(long secondsSince2000)
        {
            return secondsSince2000 + EmbeddedEpochOffset;
        }
    }
}
