using System.Device.Gpio;
using System.Device.Wifi;
using System.Threading;
using IoTHubDevice.Logic.Device;
using nanoFramework.Hardware.Esp32;
using nanoFramework.Runtime.Native;

namespace IoTHubDevice.Platform
{
    /// <summary>
    /// The ESP32 board: status LED on a GPIO, reboot through Power.RebootDevice, the reset reason from the sleep wake-up cause,
    /// and the RSSI of the configured network measured by a scan at boot (nanoFramework exposes RSSI only in scan results).
    /// </summary>
    internal sealed class Esp32Hardware : IDeviceHardware
    {
        private const int BlinkMilliseconds = 200;

        private readonly GpioController gpio = new GpioController();
        private readonly int ledPin;
        private readonly object ledLock = new object();
        private int rssi;

        public Esp32Hardware(int ledPin)
        {
            this.ledPin = ledPin;
            gpio.OpenPin(ledPin, PinMode.Output);
            gpio.Write(ledPin, PinValue.Low);
        }

        public string ResetReason
        {
            get
            {
                switch (Sleep.GetWakeupCause())
                {
                    case Sleep.WakeupCause.Undefined: return "powerOnOrReset";
                    case Sleep.WakeupCause.Timer: return "deepSleepTimer";
                    case Sleep.WakeupCause.Ext0: return "deepSleepExt0";
                    case Sleep.WakeupCause.Ext1: return "deepSleepExt1";
                    case Sleep.WakeupCause.TouchPad: return "deepSleepTouchPad";
                    case Sleep.WakeupCause.Ulp: return "deepSleepUlp";
                    default: return "other";
                }
            }
        }

        public int Rssi
        {
            get { return rssi; }
        }

        public void Blink(int count)
        {
            new Thread(() =>
            {
                lock (ledLock)
                {
                    for (var i = 0; i < count; i++)
                    {
                        gpio.Write(ledPin, PinValue.High);
                        Thread.Sleep(BlinkMilliseconds);
                        gpio.Write(ledPin, PinValue.Low);
                        Thread.Sleep(BlinkMilliseconds);
                    }
                }
            }).Start();
        }

        public void Reboot()
        {
            Power.RebootDevice();
        }

        /// <summary>Blinks slowly forever: the device has no usable configuration.</summary>
        public void SignalFault()
        {
            while (true)
            {
                gpio.Write(ledPin, PinValue.High);
                Thread.Sleep(1000);
                gpio.Write(ledPin, PinValue.Low);
                Thread.Sleep(1000);
            }
        }

        /// <summary>Scans once and keeps the signal of <paramref name="ssid"/> (0 when not seen within 10 s).</summary>
        public void MeasureRssi(string ssid)
        {
            var adapters = WifiAdapter.FindAllAdapters();
            if (adapters.Length == 0)
            {
                return;
            }

            var adapter = adapters[0];
            var done = new ManualResetEvent(false);
            AvailableNetworksChangedEventHandler handler = (sender, e) => done.Set();
            adapter.AvailableNetworksChanged += handler;
            try
            {
                adapter.ScanAsync();
                if (!done.WaitOne(10000, false))
                {
                    return;
                }

                var networks = adapter.NetworkReport.AvailableNetworks;
                for (var i = 0; i < networks.Length; i++)
                {
                    if (networks[i].Ssid == ssid)
                    {
                        rssi = (int)networks[i].NetworkRssiInDecibelMilliwatts;
                        return;
                    }
                }
            }
            finally
            {
                adapter.AvailableNetworksChanged -= handler;
            }
        }
    }
}
