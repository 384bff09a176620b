using System.Diagnostics;
using IoTHubDevice.Logic.Device;

namespace IoTHubDevice.Platform
{
    /// <summary>Writes to the debug output (visible in Visual Studio and on the serial console).</summary>
    internal sealed class DebugLog : ILog
    {
        public void Info(string message)
        {
            Debug.WriteLine(message);
        }

        public void Warning(string message)
        {
            Debug.WriteLine("WARNING: " + message);
        }
    }
}
