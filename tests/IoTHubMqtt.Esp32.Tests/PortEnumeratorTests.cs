using IoTHubMqtt.Core.Esp32;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>The Linux sysfs and macOS /dev layouts, rebuilt in a temp folder with real symlinks.</summary>
public sealed class PortEnumeratorTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "esp32enum-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(root))
        {
            Directory.Delete(root, true);
        }
    }

    [Fact]
    public void Linux_UsbSerialAndAcm_FoundByVidPid_OthersIgnored()
    {
        // ttyUSB0: usb-serial port under interface 1-1:1.0 of device 1-1 (CP210x).
        AddTty("ttyUSB0", "usb1/1-1/1-1:1.0/ttyUSB0", "usb1/1-1", "10c4", "ea60");
        // ttyACM0: CDC interface 1-2:1.0 of device 1-2 (Espressif USB-JTAG-serial).
        AddTty("ttyACM0", "usb1/1-2/1-2:1.0", "usb1/1-2", "303a", "1001");
        // ttyUSB1: a USB serial adapter nobody uses for ESP boards.
        AddTty("ttyUSB1", "usb1/1-3/1-3:1.0/ttyUSB1", "usb1/1-3", "067b", "2303");
        // ttyS0: a platform UART, no USB ids.
        Directory.CreateDirectory(Path.Combine(root, "devices/platform/serial8250/tty/ttyS0"));
        Directory.CreateSymbolicLink(Path.Combine(root, "class/tty/ttyS0"), Path.Combine(root, "devices/platform/serial8250/tty/ttyS0"));

        var found = Esp32PortEnumerator.EnumerateLinux(Path.Combine(root, "class/tty"), "/dev");

        Assert.Equal(["/dev/ttyACM0", "/dev/ttyUSB0"], found.Select(c => c.Port));
        Assert.Equal("Espressif USB-JTAG-serial", found[0].Bridge);
        Assert.Equal(0x1001, found[0].ProductId);
        Assert.Equal("10C4:EA60 (CP210x)", found[1].UsbId);
    }

    [Fact]
    public void MacOS_DriverNames_Recognised()
    {
        Directory.CreateDirectory(root);
        foreach (var name in new[] { "cu.usbmodem1101", "cu.SLAB_USBtoUART", "cu.wchusbserial1410", "cu.Bluetooth-Incoming-Port", "tty.usbmodem1101" })
        {
            File.WriteAllText(Path.Combine(root, name), string.Empty);
        }

        var found = Esp32PortEnumerator.EnumerateMacOS(root);

        Assert.Equal(["cu.SLAB_USBtoUART", "cu.usbmodem1101", "cu.wchusbserial1410"], found.Select(c => Path.GetFileName(c.Port)));
    }

    [Theory]
    [InlineData(0x1A86, 0x7523, "CH340")]
    [InlineData(0x1A86, 0x55D4, "CH9102")]
    [InlineData(0x0403, 0x6001, "FTDI")]
    [InlineData(0x303A, 0x0002, "Espressif USB")]
    public void BridgeFor_KnownIds(int vid, int pid, string bridge) => Assert.Equal(bridge, Esp32PortEnumerator.BridgeFor((ushort)vid, (ushort)pid));

    private void AddTty(string name, string portDir, string usbDevice, string vid, string pid)
    {
        var devices = Path.Combine(root, "devices");
        var port = Path.Combine(devices, portDir);
        var ttyDir = Path.Combine(port, "tty", name);
        Directory.CreateDirectory(ttyDir);
        File.WriteAllText(Path.Combine(devices, usbDevice, "idVendor"), vid + "\n");
        File.WriteAllText(Path.Combine(devices, usbDevice, "idProduct"), pid + "\n");
        Directory.CreateSymbolicLink(Path.Combine(ttyDir, "device"), Path.GetRelativePath(ttyDir, port));
        Directory.CreateDirectory(Path.Combine(root, "class/tty"));
        Directory.CreateSymbolicLink(Path.Combine(root, "class/tty", name), ttyDir);
    }
}
