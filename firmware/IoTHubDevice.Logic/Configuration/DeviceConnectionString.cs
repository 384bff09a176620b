using System;

namespace IoTHubDevice.Logic.Configuration
{
    /// <summary>
    /// A device connection string <c>HostName=…;DeviceId=…;SharedAccessKey=…</c> (+ optional <c>ModuleId</c>, <c>GatewayHostName</c>).
    /// Keys are case-sensitive, order is free, values may contain '='. Policy strings and X.509 strings are refused: the device
    /// authenticates with its own key. <see cref="ToString"/> never shows the key.
    /// </summary>
    public sealed class DeviceConnectionString
    {
        private DeviceConnectionString()
        {
        }

        public string HostName { get; private set; }

        public string DeviceId { get; private set; }

        public string ModuleId { get; private set; }

        public string GatewayHostName { get; private set; }

        /// <summary>The base64 device key. Secret.</summary>
        public string SharedAccessKey { get; private set; }

        /// <summary>Where the device connects: the gateway when one is given, else the hub.</summary>
        public string ConnectHostName
        {
            get { return GatewayHostName != null ? GatewayHostName : HostName; }
        }

        public static DeviceConnectionString Parse(string text)
        {
            if (text == null || text.Trim().Length == 0)
            {
                throw new DeviceLogicException("ConnectionStringEmpty", "The connection string is empty.");
            }

            var result = new DeviceConnectionString();
            var parts = text.Split(';');
            for (var i = 0; i < parts.Length; i++)
            {
                var part = parts[i].Trim();
                if (part.Length == 0)
                {
                    continue;
                }

                var eq = part.IndexOf('=');
                if (eq <= 0)
                {
                    throw new DeviceLogicException("ConnectionStringMalformed", "A connection string part is not 'Name=value' (part " + (i + 1).ToString() + ").");
                }

                var name = part.Substring(0, eq);
                var value = part.Substring(eq + 1);
                if (value.Length == 0)
                {
                    throw new DeviceLogicException("ConnectionStringMalformed", "The connection string field '" + name + "' is empty.");
                }

                switch (name)
                {
                    case "HostName": result.HostName = value; break;
                    case "DeviceId": result.DeviceId = value; break;
                    case "ModuleId": result.ModuleId = value; break;
                    case "GatewayHostName": result.GatewayHostName = value; break;
                    case "SharedAccessKey": result.SharedAccessKey = value; break;
                    case "SharedAccessKeyName":
                        throw new DeviceLogicException("ConnectionStringNotDevice", "The connection string is a policy (service) connection string; the device needs its own device connection string.");
                    case "x509":
                        throw new DeviceLogicException("ConnectionStringX509NotSupported", "X.509 connection strings are not supported by this firmware; use a device connection string with SharedAccessKey.");
                    case "SharedAccessSignature":
                        throw new DeviceLogicException("ConnectionStringSasNotSupported", "Connection strings with a fixed SharedAccessSignature are not supported: the device creates and renews its own tokens from SharedAccessKey.");
                    default:
                        throw new DeviceLogicException("ConnectionStringUnknownField", "The connection string has an unknown field '" + name + "'.");
                }
            }

            if (result.HostName == null)
            {
                throw new DeviceLogicException("ConnectionStringMissingHostName", "The connection string has no HostName.");
            }

            if (result.DeviceId == null)
            {
                throw new DeviceLogicException("ConnectionStringMissingDeviceId", "The connection string has no DeviceId.");
            }

            if (result.SharedAccessKey == null)
            {
                throw new DeviceLogicException("ConnectionStringMissingKey", "The connection string has no SharedAccessKey.");
            }

            KeyBytes(result.SharedAccessKey, "ConnectionStringKeyNotBase64", "The SharedAccessKey is not valid base64.");
            return result;
        }

        /// <summary>Decodes a base64 key, throwing a <see cref="DeviceLogicException"/> with <paramref name="errorId"/> when invalid.</summary>
        internal static byte[] KeyBytes(string base64, string errorId, string message)
        {
            byte[] key = null;
            try
            {
                key = Convert.FromBase64String(base64);
            }
            catch (Exception)
            {
                key = null;
            }

            if (key == null || key.Length == 0)
            {
                throw new DeviceLogicException(errorId, message);
            }

            return key;
        }

        public override string ToString()
        {
            return "HostName=" + HostName + ";DeviceId=" + DeviceId + (ModuleId != null ? ";ModuleId=" + ModuleId : string.Empty) + ";SharedAccessKey=***";
        }
    }
}
