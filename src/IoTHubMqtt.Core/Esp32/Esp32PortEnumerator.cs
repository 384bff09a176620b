using System.Globalization;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>A serial port whose USB vendor/product id says an ESP board may be behind it.</summary>
public sealed record Esp32PortCandidate(string Port, ushort VendorId, ushort ProductId, string Bridge)
{
    public string UsbId => VendorId == 0 ? Bridge : $"{VendorId:X4}:{ProductId:X4} ({Bridge})";
}

/// <summary>
/// Finds serial ports of ESP boards by USB VID/PID: Espressif native USB (303A), Silicon Labs CP210x (10C4),
/// WCH CH340/CH9102 (1A86) and FTDI (0403). Linux reads sysfs, Windows the USB enumeration registry keys,
/// macOS has no VID/PID without IOKit and goes by the driver's device names.
/// </summary>
public static class Esp32PortEnumerator
{
    public static string? BridgeFor(ushort vendorId, ushort productId) => (vendorId, productId) switch
    {
        (0x303A, 0x1001) => "Espressif USB-JTAG-serial",
        (0x303A, _) => "Espressif USB",
        (0x10C4, 0xEA60 or 0xEA70 or 0xEA71) => "CP210x",
        (0x1A86, 0x7523 or 0x5523) => "CH340",
        (0x1A86, 0x55D4 or 0x55D3) => "CH9102",
        (0x0403, 0x6001 or 0x6010 or 0x6011 or 0x6014 or 0x6015) => "FTDI",
        _ => null,
    };

    public static IReadOnlyList<Esp32PortCandidate> Enumerate()
    {
        if (OperatingSystem.IsWindows())
        {
            return EnumerateWindows();
        }

        return OperatingSystem.IsMacOS() ? EnumerateMacOS("/dev") : EnumerateLinux("/sys/class/tty", "/dev");
    }

    /// <summary>Linux: each /sys/class/tty/X/device resolves into the USB interface; its parent holds idVendor/idProduct.</summary>
    public static IReadOnlyList<Esp32PortCandidate> EnumerateLinux(string sysClassTty, string devRoot)
    {
        var result = new List<Esp32PortCandidate>();
        if (!Directory.Exists(sysClassTty))
        {
            return result;
        }

        foreach (var tty in Directory.EnumerateDirectories(sysClassTty).Concat(Directory.EnumerateFileSystemEntries(sysClassTty).Where(p => new FileInfo(p).LinkTarget is not null)).Distinct().Order(StringComparer.Ordinal))
        {
            string? dir;
            try
            {
                // Resolve /sys/class/tty/X to its real directory first, so the relative "device" link resolves against it.
                var device = Path.Combine(Resolve(tty), "device");
                dir = Directory.Exists(device) ? Resolve(device) : null;
            }
            catch (IOException)
            {
                continue;
            }

            for (var depth = 0; dir is not null && depth < 4; depth++, dir = Path.GetDirectoryName(dir))
            {
                var vendorFile = Path.Combine(dir, "idVendor");
                var productFile = Path.Combine(dir, "idProduct");
                if (File.Exists(vendorFile) && File.Exists(productFile))
                {
                    if (ushort.TryParse(File.ReadAllText(vendorFile).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var vid)
                        && ushort.TryParse(File.ReadAllText(productFile).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var pid)
                        && BridgeFor(vid, pid) is { } bridge)
                    {
                        result.Add(new Esp32PortCandidate(Path.Combine(devRoot, Path.GetFileName(tty)), vid, pid, bridge));
                    }

                    break;
                }
            }
        }

        return result;
    }

    private static string Resolve(string path)
    {
        path = Path.GetFullPath(path);
        for (var i = 0; i < 16 && new DirectoryInfo(path).LinkTarget is { } target; i++)
        {
            path = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path) ?? "/", target));
        }

        return path;
    }

    /// <summary>macOS: /dev/cu.* names the USB serial drivers create.</summary>
    public static IReadOnlyList<Esp32PortCandidate> EnumerateMacOS(string devRoot)
    {
        if (!Directory.Exists(devRoot))
        {
            return [];
        }

        return Directory.EnumerateFileSystemEntries(devRoot, "cu.*").Order(StringComparer.Ordinal).Select(path => Path.GetFileName(path) switch
        {
            var n when n.StartsWith("cu.usbmodem", StringComparison.Ordinal) => new Esp32PortCandidate(path, 0, 0, "USB CDC (Espressif native USB or similar)"),
            var n when n.StartsWith("cu.SLAB_USBtoUART", StringComparison.Ordinal) => new Esp32PortCandidate(path, 0x10C4, 0xEA60, "CP210x"),
            var n when n.StartsWith("cu.wchusbserial", StringComparison.Ordinal) => new Esp32PortCandidate(path, 0x1A86, 0x7523, "CH340"),
            var n when n.StartsWith("cu.usbserial", StringComparison.Ordinal) => new Esp32PortCandidate(path, 0, 0, "USB serial (CP210x, CH340 or FTDI)"),
            _ => null,
        }).OfType<Esp32PortCandidate>().ToList();
    }

    /// <summary>Windows: HKLM\SYSTEM\CurrentControlSet\Enum\USB\VID_xxxx&amp;PID_yyyy\*\Device Parameters\PortName, for ports that exist now.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("windows")]
    public static IReadOnlyList<Esp32PortCandidate> EnumerateWindows()
    {
        var present = new HashSet<string>(System.IO.Ports.SerialPort.GetPortNames(), StringComparer.OrdinalIgnoreCase);
        var result = new List<Esp32PortCandidate>();
        using var usb = Microsoft.Win32.Registry.LocalMachine.OpenSubKey(@"SYSTEM\CurrentControlSet\Enum\USB");
        if (usb is null)
        {
            return result;
        }

        foreach (var id in usb.GetSubKeyNames())
        {
            var parts = id.Split('&');
            if (parts.Length < 2 || !parts[0].StartsWith("VID_", StringComparison.OrdinalIgnoreCase) || !parts[1].StartsWith("PID_", StringComparison.OrdinalIgnoreCase)
                || !ushort.TryParse(parts[0][4..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var vid)
                || !ushort.TryParse(parts[1][4..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var pid)
                || BridgeFor(vid, pid) is not { } bridge)
            {
                continue;
            }

            using var device = usb.OpenSubKey(id);
            foreach (var instance in device?.GetSubKeyNames() ?? [])
            {
                using var parameters = device!.OpenSubKey(instance + @"\Device Parameters");
                if (parameters?.GetValue("PortName") is string name && present.Contains(name))
                {
                    result.Add(new Esp32PortCandidate(name, vid, pid, bridge));
                }
            }
        }

        return result;
    }
}
