using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>The flasher's errors: stable ErrorIds, each with the fix for the common cause.</summary>
public static class Esp32Errors
{
    public static IoTHubMqttException SyncFailed(string port, string? bootLog, IReadOnlyCollection<int>? otherRatesTried = null) => new(
        ErrorIds.Esp32SyncFailed,
        $"No answer from the ESP32 bootloader on {port}"
            + (otherRatesTried is { Count: > 0 } ? $" (nor from a flasher stub at {string.Join(", ", otherRatesTried)} baud)." : ".")
            + (string.IsNullOrWhiteSpace(bootLog) ? string.Empty : $" The board printed: {Trim(bootLog)}"),
        "Hold the BOOT (IO0) button while pressing and releasing EN/RESET, then retry; check the port and the cable (a data cable, not charge-only).", port);

    public static IoTHubMqttException Timeout(string port, string operation, string? region = null, long? offset = null) => new(
        ErrorIds.Esp32Timeout,
        $"The ESP32 on {port} did not answer {operation}" + Where(region, offset) + " in time.",
        "Retry with a lower -Baud (e.g. 460800 or 115200), a shorter USB cable, or without a USB hub.", port);

    public static IoTHubMqttException SyncLost(string port, string operation, string? region, long? offset, Exception? inner) => new(
        ErrorIds.Esp32SyncLost,
        $"Lost contact with the ESP32 on {port} during {operation}" + Where(region, offset) + " after repeated retries.",
        "Retry with a lower -Baud; check the cable and power supply.", port, inner);

    public static IoTHubMqttException Md5Mismatch(string region, long offset, string expected, string actual) => new(
        ErrorIds.Esp32Md5Mismatch,
        $"Verification failed for region '{region}' at 0x{offset:X}: flash MD5 {actual}, expected {expected}. The write did not succeed.",
        "Retry; if it persists, the flash may be write-protected or failing (try Clear-Esp32Flash, a lower -Baud, or another board).", region);

    public static IoTHubMqttException RomError(string operation, Esp32RomErrorKind kind, byte code, string? region = null, long? offset = null) => new(
        ErrorIds.Esp32CommandFailed,
        $"The ESP32 loader rejected {operation}" + Where(region, offset) + $": {kind} (0x{code:X2}).",
        kind is Esp32RomErrorKind.FlashWriteError or Esp32RomErrorKind.FailedSpiUnlock
            ? "The flash may be write-protected; try Clear-Esp32Flash or check the flash chip."
            : "Retry with a lower -Baud.", region);

    public static IoTHubMqttException ChipMismatch(string port, Esp32Chip expected, Esp32Chip actual) => new(
        ErrorIds.Esp32ChipMismatch,
        $"The board on {port} is an {Esp32ChipInfo.Get(actual).Name}, not an {Esp32ChipInfo.Get(expected).Name}.",
        $"Use -Chip {actual} or a firmware built for {Esp32ChipInfo.Get(actual).Name}.", port);

    public static IoTHubMqttException ImageChipMismatch(string region, int imageChipId, Esp32Chip actual) => new(
        ErrorIds.Esp32ImageChipMismatch,
        $"Image '{region}' is built for {Esp32ChipInfo.NameForImageChipId(imageChipId)}, but the board is an {Esp32ChipInfo.Get(actual).Name}. Nothing was written.",
        $"Use the firmware package built for {Esp32ChipInfo.Get(actual).Name}.", region);

    public static IoTHubMqttException ImageTooLarge(string region, long offset, long length, long limit, string what) => new(
        ErrorIds.Esp32ImageTooLarge,
        $"Region '{region}' (0x{offset:X}, {length} bytes) does not fit in the {what} ({limit} bytes). Nothing was written.",
        "Use a smaller image, a larger partition, or a board with more flash.", region);

    public static IoTHubMqttException PortBusy(string port, Exception? inner) => new(
        ErrorIds.Esp32PortBusy,
        $"Port {port} is in use by another program.",
        "Close the serial monitor, IDE or other flasher using the port, then retry.", port, inner);

    public static IoTHubMqttException PermissionDenied(string port, Exception? inner) => new(
        ErrorIds.Esp32PermissionDenied,
        $"Permission denied opening {port}.",
        OperatingSystem.IsLinux()
            ? "Add your user to the 'dialout' group (sudo usermod -aG dialout $USER), then log out and in again."
            : "Check that your account may use the port and no other program holds it.", port, inner);

    public static IoTHubMqttException PortNotFound(string port, Exception? inner) => new(
        ErrorIds.Esp32PortNotFound,
        $"Port {port} does not exist or could not be reached.",
        "Run Get-Esp32Device to list connected boards; check the cable.", port, inner);

    public static IoTHubMqttException InvalidPort(string port, string why) => new(
        ErrorIds.Esp32InvalidPort,
        $"'{port}' is not a valid port: {why}",
        "Use a serial port name (COM5, /dev/ttyUSB0), socket://host:port or rfc2217://host:port.", port);

    public static IoTHubMqttException NotSupported(string port, string operation) => new(
        ErrorIds.Esp32CommandNotSupported,
        $"The loader on {port} does not support {operation}.", "Use an operation the chip's ROM supports, or let the flasher stub load.", port);

    public static IoTHubMqttException Protocol(string port, string message) => new(
        ErrorIds.Esp32ProtocolError, $"{port}: {message}", "Retry; reset the board into the bootloader.", port);

    public static IoTHubMqttException InvalidImage(string errorId, string message, object? target = null) => new(
        errorId, message, null, target);

    private static string Where(string? region, long? offset) =>
        region is null ? string.Empty : offset is null ? $" (region '{region}')" : $" (region '{region}' at 0x{offset:X})";

    private static string Trim(string text)
    {
        var clean = new string(text.Where(c => c == '\n' || !char.IsControl(c)).ToArray()).Trim();
        return clean.Length > 300 ? clean[^300..] : clean;
    }
}
