using System.IO;

namespace IoTHubDevice.Platform
{
    /// <summary>Reads the configuration container from the internal drive (I:\, the littlefs 'config' partition on ESP32).</summary>
    internal static class ConfigurationStore
    {
        /// <summary>The file's bytes, or null when it does not exist (the logic then reports ConfigurationMissing).</summary>
        public static byte[] Read(string path)
        {
            if (!File.Exists(path))
            {
                return null;
            }

            return File.ReadAllBytes(path);
        }
    }
}
