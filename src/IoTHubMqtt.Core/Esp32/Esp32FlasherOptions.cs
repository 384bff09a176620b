namespace IoTHubMqtt.Core.Esp32;

/// <summary>Options of <see cref="Esp32Flasher"/>; the defaults are what a user usually wants.</summary>
public sealed class Esp32FlasherOptions
{
    /// <summary>Baud rate for the transfer after the stub runs (the ROM always starts at 115200).</summary>
    public int BaudRate { get; set; } = 921600;

    /// <summary>The chip the caller expects; Auto accepts any.</summary>
    public Esp32Chip Chip { get; set; } = Esp32Chip.Auto;

    public Esp32ResetMode Reset { get; set; } = Esp32ResetMode.Auto;

    /// <summary>USB product id of the port, when known (picks the USB-JTAG-serial reset).</summary>
    public ushort? UsbProductId { get; set; }

    /// <summary>Rewrite regions whose flash content already matches.</summary>
    public bool Force { get; set; }

    /// <summary>Upload the RAM stub (faster, compressed reads and erase). Off = ROM only.</summary>
    public bool UseStub { get; set; } = true;

    /// <summary>Attempts per region after a timeout, lost sync or MD5 mismatch.</summary>
    public int Retries { get; set; } = 3;

    /// <summary>Reset rounds when connecting.</summary>
    public int ConnectAttempts { get; set; } = 3;

    /// <summary>Reset into the application when done (needs DTR/RTS).</summary>
    public bool ResetAfter { get; set; } = true;

    public Esp32FlashMode FlashMode { get; set; } = Esp32FlashMode.Keep;

    /// <summary>Flash size written to the bootloader header; null = the detected size.</summary>
    public long? FlashSize { get; set; }

    /// <summary>Raw frequency code for the bootloader header; null keeps it (or uses <see cref="FlashFrequency"/>).</summary>
    public int? FlashFrequencyCode { get; set; }

    /// <summary>Flash frequency for the bootloader header by name ("40m", "80m"…), coded for the detected chip; null keeps it.</summary>
    public string? FlashFrequency { get; set; }

    public Action<string>? Log { get; set; }

    /// <summary>The clock of every timeout, retry pause and reset pulse (a fake one in tests); the system clock by default.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    public IProgress<Esp32FlashProgress>? Progress { get; set; }

    /// <summary>Called as each region is verified (or skipped), before the next one starts.</summary>
    public Action<Esp32RegionResult>? RegionCompleted { get; set; }
}
