using System;
using System.Device.Wifi;
using System.Threading;
using IoTHubDevice.Logic;
using IoTHubDevice.Logic.Configuration;
using IoTHubDevice.Logic.Device;
using IoTHubDevice.Platform;
using nanoFramework.Networking;
using nanoFramework.Runtime.Native;

namespace IoTHubDevice
{
    /// <summary>
    /// Boot: read the configuration from the internal drive, join Wi-Fi and wait for SNTP time, then run the device logic
    /// (IoTHubDevice.Logic) over the M2Mqtt client. Everything that decides what to send lives in the logic library; this
    /// file only wires the board to it.
    /// </summary>
    public class Program
    {
        public const string FirmwareVersion = "0.1.0";

        /// <summary>Written by Install-Esp32Firmware -Configuration (firmware/docs/device-configuration.md).</summary>
        public const string ConfigurationPath = "I:\\iothub-device.cfg";

        /// <summary>The on-board LED of ESP32-DevKitC style boards; change for other boards.</summary>
        public const int LedPin = 2;

        private const int WifiTimeoutMilliseconds = 60000;

        public static void Main()
        {
            var log = new DebugLog();
            var hardware = new Esp32Hardware(LedPin);
            log.Info("IoTHubDevice " + FirmwareVersion + " starting; reset reason " + hardware.ResetReason + ".");

            DeviceConfiguration configuration;
            try
            {
                configuration = DeviceConfiguration.Decode(ConfigurationStore.Read(ConfigurationPath));
            }
            catch (DeviceLogicException ex)
            {
                // Nothing to connect with: say why on the debug output and blink slowly until someone writes a configuration.
                log.Warning("No usable configuration (" + ex.ErrorId + "): " + ex.Message);
                hardware.SignalFault();
                return;
            }

            log.Info("Configuration: " + configuration.ToString() + ".");
            hardware.MeasureRssi(configuration.WifiSsid);

            var cancel = new CancellationTokenSource(WifiTimeoutMilliseconds);
            var joined = WifiNetworkHelper.ConnectDhcp(configuration.WifiSsid, configuration.WifiPassword, WifiReconnectionKind.Automatic, true, 0, cancel.Token);
            if (!joined)
            {
                log.Warning("Could not join Wi-Fi '" + configuration.WifiSsid + "' or get the time; restarting in 30 s.");
                Thread.Sleep(30000);
                Power.RebootDevice();
                return;
            }

            log.Info("Wi-Fi joined; time is " + DateTime.UtcNow.ToString() + ".");
            var app = new DeviceApp(configuration, new M2MqttTransport(), new NanoHmacSha256(), new NanoClock(), hardware, log, FirmwareVersion, new Random());
            while (true)
            {
                try
                {
                    app.Tick();
                }
                catch (Exception ex)
                {
                    // Keep the device reachable: a bug in one step must not end the loop.
                    log.Warning("Unexpected error: " + ex.Message);
                }

                Thread.Sleep(100);
            }
        }
    }
}
