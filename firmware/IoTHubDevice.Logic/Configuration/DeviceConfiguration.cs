using System.Text;
using IoTHubDevice.Logic.Json;

namespace IoTHubDevice.Logic.Configuration
{
    /// <summary>
    /// What the app reads at boot (firmware/docs/device-configuration.md): Wi-Fi credentials, either a device connection string or DPS
    /// enrollment data, an optional CA bundle and optional tuning. <see cref="ToString"/> never shows a secret.
    /// </summary>
    public sealed class DeviceConfiguration
    {
        public const string DefaultDpsEndpoint = "global.azure-devices-provisioning.net";
        public const int DefaultTelemetryIntervalSeconds = 60;
        public const int MinTelemetryIntervalSeconds = 1;
        public const int MaxTelemetryIntervalSeconds = 86400;
        public const int DefaultPort = 8883;

        private DeviceConfiguration()
        {
        }

        public string WifiSsid { get; private set; }

        /// <summary>Secret; empty for an open network.</summary>
        public string WifiPassword { get; private set; }

        /// <summary>Set when the device connects with a connection string; null with DPS.</summary>
        public DeviceConnectionString ConnectionString { get; private set; }

        public bool UsesDps
        {
            get { return DpsIdScope != null; }
        }

        public string DpsIdScope { get; private set; }

        public string DpsRegistrationId { get; private set; }

        /// <summary>The enrollment's (or derived) device key. Secret.</summary>
        public string DpsSymmetricKey { get; private set; }

        public string DpsGlobalEndpoint { get; private set; }

        /// <summary>PEM text of the root CA(s) the hub chains to, or null to use the firmware's built-in roots.</summary>
        public string CaCertificatePem { get; private set; }

        public int TelemetryIntervalSeconds { get; private set; }

        /// <summary>MQTT/TLS port (8883 for Azure; another for a local emulator).</summary>
        public int Port { get; private set; }

        /// <summary>Reads a configuration container (see <see cref="ConfigurationContainer"/>).</summary>
        public static DeviceConfiguration Decode(byte[] blob)
        {
            return FromJson(ConfigurationContainer.ReadBody(blob));
        }

        /// <summary>Parses and validates the JSON body.</summary>
        public static DeviceConfiguration FromJson(string json)
        {
            object parsed;
            try
            {
                parsed = JsonReader.Parse(json);
            }
            catch (JsonException ex)
            {
                throw new DeviceLogicException("ConfigurationInvalidJson", "The device configuration is not valid JSON: " + ex.Message);
            }

            var root = parsed as JsonObject;
            if (root == null)
            {
                throw new DeviceLogicException("ConfigurationInvalidJson", "The device configuration must be a JSON object.");
            }

            var config = new DeviceConfiguration();
            var wifi = root.GetObject("wifi");
            if (wifi == null)
            {
                throw new DeviceLogicException("ConfigurationMissingWifi", "The device configuration has no 'wifi' object.");
            }

            config.WifiSsid = wifi.GetString("ssid");
            if (config.WifiSsid == null || config.WifiSsid.Length == 0 || Encoding.UTF8.GetBytes(config.WifiSsid).Length > 32)
            {
                throw new DeviceLogicException("ConfigurationInvalidSsid", "'wifi.ssid' must be a string of 1 to 32 bytes.");
            }

            var password = wifi["password"];
            if (password != null && !(password is string))
            {
                throw new DeviceLogicException("ConfigurationInvalidWifiPassword", "'wifi.password' must be a string.");
            }

            config.WifiPassword = password == null ? string.Empty : (string)password;
            if (config.WifiPassword.Length != 0 && (config.WifiPassword.Length < 8 || config.WifiPassword.Length > 64))
            {
                throw new DeviceLogicException("ConfigurationInvalidWifiPassword", "'wifi.password' must be empty (open network) or 8 to 64 characters (WPA2).");
            }

            var hub = root.GetObject("iothub");
            var dps = root.GetObject("dps");
            if (hub != null && dps != null)
            {
                throw new DeviceLogicException("ConfigurationBothCredentials", "The device configuration has both 'iothub' and 'dps'; give one.");
            }

            if (hub == null && dps == null)
            {
                throw new DeviceLogicException("ConfigurationNoCredential", "The device configuration has neither 'iothub' nor 'dps'.");
            }

            if (hub != null)
            {
                var cs = hub.GetString("connectionString");
                if (cs == null)
                {
                    throw new DeviceLogicException("ConfigurationMissingConnectionString", "'iothub.connectionString' is missing.");
                }

                config.ConnectionString = DeviceConnectionString.Parse(cs);
                if (config.ConnectionString.ModuleId != null)
                {
                    throw new DeviceLogicException("ConnectionStringModuleNotSupported", "The connection string is for a module; the device app needs a device connection string.");
                }
            }
            else
            {
                config.DpsIdScope = dps.GetString("idScope");
                config.DpsRegistrationId = dps.GetString("registrationId");
                config.DpsSymmetricKey = dps.GetString("symmetricKey");
                config.DpsGlobalEndpoint = dps.GetString("globalEndpoint");
                if (config.DpsGlobalEndpoint == null)
                {
                    config.DpsGlobalEndpoint = DefaultDpsEndpoint;
                }

                if (config.DpsIdScope == null || config.DpsIdScope.Length == 0)
                {
                    throw new DeviceLogicException("ConfigurationInvalidIdScope", "'dps.idScope' is missing.");
                }

                if (!IsValidRegistrationId(config.DpsRegistrationId))
                {
                    throw new DeviceLogicException("ConfigurationInvalidRegistrationId", "'dps.registrationId' must be 1 to 128 lowercase letters, digits or '-', '.', '_', ':'.");
                }

                if (config.DpsSymmetricKey == null)
                {
                    throw new DeviceLogicException("ConfigurationMissingSymmetricKey", "'dps.symmetricKey' is missing.");
                }

                DeviceConnectionString.KeyBytes(config.DpsSymmetricKey, "ConfigurationSymmetricKeyNotBase64", "'dps.symmetricKey' is not valid base64.");
            }

            var ca = root["caCertificate"];
            if (ca != null)
            {
                var pem = ca as string;
                if (pem == null || pem.IndexOf("-----BEGIN CERTIFICATE-----") < 0 || pem.IndexOf("-----END CERTIFICATE-----") < 0)
                {
                    throw new DeviceLogicException("ConfigurationInvalidCaCertificate", "'caCertificate' must be PEM text with at least one certificate.");
                }

                config.CaCertificatePem = pem;
            }

            config.TelemetryIntervalSeconds = DefaultTelemetryIntervalSeconds;
            if (root.Contains("telemetryInterval"))
            {
                long interval;
                if (!root.TryGetInteger("telemetryInterval", out interval) || !IsValidTelemetryInterval(interval))
                {
                    throw new DeviceLogicException("ConfigurationInvalidTelemetryInterval",
                        "'telemetryInterval' must be a whole number of seconds from " + MinTelemetryIntervalSeconds.ToString() + " to " + MaxTelemetryIntervalSeconds.ToString() + ".");
                }

                config.TelemetryIntervalSeconds = (int)interval;
            }

            config.Port = DefaultPort;
            if (root.Contains("port"))
            {
                long port;
                if (!root.TryGetInteger("port", out port) || port < 1 || port > 65535)
                {
                    throw new DeviceLogicException("ConfigurationInvalidPort", "'port' must be a TCP port from 1 to 65535.");
                }

                config.Port = (int)port;
            }

            return config;
        }

        public static bool IsValidTelemetryInterval(long seconds)
        {
            return seconds >= MinTelemetryIntervalSeconds && seconds <= MaxTelemetryIntervalSeconds;
        }

        internal static bool IsValidRegistrationId(string id)
        {
            if (id == null || id.Length == 0 || id.Length > 128)
            {
                return false;
            }

            for (var i = 0; i < id.Length; i++)
            {
                var c = id[i];
                var ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == ':';
                if (!ok)
                {
                    return false;
                }
            }

            return true;
        }

        public override string ToString()
        {
            var target = UsesDps ? "DPS " + DpsIdScope + "/" + DpsRegistrationId : ConnectionString.HostName + "/" + ConnectionString.DeviceId;
            return "Wi-Fi '" + WifiSsid + "', " + target + (CaCertificatePem != null ? ", custom CA" : string.Empty);
        }
    }
}
