using System;

namespace IoTHubDevice.Logic
{
    /// <summary>
    /// The one exception of the device logic. <see cref="ErrorId"/> is stable (PascalCase, listed in firmware/docs/device-configuration.md);
    /// messages never contain a key, a token, a password or a connection string.
    /// </summary>
    public class DeviceLogicException : Exception
    {
        public DeviceLogicException(string errorId, string message)
            : base(message)
        {
            ErrorId = errorId;
        }

        public DeviceLogicException(string errorId, string message, Exception innerException)
            : base(message, innerException)
        {
            ErrorId = errorId;
        }

        public string ErrorId { get; private set; }
    }
}
