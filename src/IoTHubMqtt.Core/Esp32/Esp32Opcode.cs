namespace IoTHubMqtt.Core.Esp32;

/// <summary>
/// Serial bootloader commands (ROM and flasher stub).
/// See https://docs.espressif.com/projects/esptool/en/latest/esp32/advanced-topics/serial-protocol.html#supported-by-stub-loader-and-rom-loader
/// </summary>
public enum Esp32Opcode : byte
{
    FlashBegin = 0x02,
    FlashData = 0x03,
    FlashEnd = 0x04,
    MemBegin = 0x05,
    MemEnd = 0x06,
    MemData = 0x07,
    Sync = 0x08,
    WriteReg = 0x09,
    ReadReg = 0x0A,
    SpiSetParams = 0x0B,
    SpiAttach = 0x0D,
    ChangeBaudRate = 0x0F,
    FlashDeflBegin = 0x10,
    FlashDeflData = 0x11,
    FlashDeflEnd = 0x12,
    SpiFlashMd5 = 0x13,
    GetSecurityInfo = 0x14,

    // Stub only.
    EraseFlash = 0xD0,
    EraseRegion = 0xD1,
    ReadFlash = 0xD2,
    RunUserCode = 0xD3,
}

/// <summary>What a non-zero status byte means (ROM codes 0x05-0x0B, stub codes 0xC0-0xFF).</summary>
public enum Esp32RomErrorKind
{
    None = 0,
    InvalidMessage = 0x05,
    FailedToAct = 0x06,
    InvalidCrc = 0x07,
    FlashWriteError = 0x08,
    FlashReadError = 0x09,
    FlashReadLengthError = 0x0A,
    DeflateError = 0x0B,
    BadDataLength = 0xC0,
    BadDataChecksum = 0xC1,
    BadBlockSize = 0xC2,
    InvalidCommand = 0xC3,
    FailedSpiOperation = 0xC4,
    FailedSpiUnlock = 0xC5,
    NotInFlashMode = 0xC6,
    InflateError = 0xC7,
    NotEnoughData = 0xC8,
    TooMuchData = 0xC9,
    CommandNotImplemented = 0xFF,

    /// <summary>A code this table does not know; the raw value is in the message.</summary>
    Other = 0x100,
}

public static class Esp32RomError
{
    public static Esp32RomErrorKind FromCode(byte code) =>
        Enum.IsDefined(typeof(Esp32RomErrorKind), (int)code) && code != 0 ? (Esp32RomErrorKind)code : code == 0 ? Esp32RomErrorKind.None : Esp32RomErrorKind.Other;
}
