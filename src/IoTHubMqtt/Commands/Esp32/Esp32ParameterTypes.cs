namespace IoTHubMqtt.Commands.Esp32;

// Parameter enums live in the cmdlet assembly: PowerShell lays out cmdlet classes while importing, before the module's
// private dependencies (IoTHubMqtt.Core) can be resolved, so a Core value type cannot be a cmdlet field. They mirror
// the Core enums by name.

/// <summary>The chip a board must be (-Chip).</summary>
public enum Esp32ChipName
{
    Auto,
    Esp32,
    Esp32S2,
    Esp32S3,
    Esp32C3,
    Esp32C6,
    Esp32H2,
}

/// <summary>How to enter the bootloader (-Reset).</summary>
public enum Esp32Reset
{
    Auto,
    Classic,
    UsbJtagSerial,
    None,
}

/// <summary>SPI flash mode for the bootloader header (-FlashMode).</summary>
public enum Esp32FlashModeName
{
    Keep,
    Qio,
    Qout,
    Dio,
    Dout,
}

internal static class Esp32ParameterMap
{
    public static TCore To<TCore>(this Enum value)
        where TCore : struct, Enum => Enum.Parse<TCore>(value.ToString());
}
