namespace IoTHubMqtt.Core.Esp32;

/// <summary>Supported chips.</summary>
public enum Esp32Chip
{
    Auto = 0,
    Esp32,
    Esp32S2,
    Esp32S3,
    Esp32C3,
    Esp32C6,
    Esp32H2,
}

/// <summary>
/// Per-chip facts as data: detection values, bootloader offset, register addresses and ROM quirks.
/// Values from Espressif's technical reference manuals and serial-protocol documentation.
/// </summary>
public sealed record Esp32ChipInfo
{
    public const uint MagicRegister = 0x40001000;

    public required Esp32Chip Chip { get; init; }
    public required string Name { get; init; }

    /// <summary>Value at 0x40001000 on chips detected by magic (ESP32, ESP32-S2).</summary>
    public uint? Magic { get; init; }

    /// <summary>GET_SECURITY_INFO chip id (also the image header chip id).</summary>
    public required int ImageChipId { get; init; }

    public required uint BootloaderOffset { get; init; }

    /// <summary>The ROM's FLASH_BEGIN / FLASH_DEFL_BEGIN take a 5th word (encrypted flag).</summary>
    public required bool RomBeginTakesEncryptedFlag { get; init; }

    public required bool SupportsSecurityInfo { get; init; }

    /// <summary>The 64-bit MAC eFuse pair (low word, then high word).</summary>
    public required uint MacEfuseRegister { get; init; }

    public required uint SpiRegisterBase { get; init; }
    public required uint SpiUsrOffset { get; init; }
    public required uint SpiUsr1Offset { get; init; }
    public required uint SpiUsr2Offset { get; init; }
    public required uint SpiW0Offset { get; init; }
    public required uint SpiMosiDlenOffset { get; init; }
    public required uint SpiMisoDlenOffset { get; init; }

    /// <summary>Where the eFuse BLOCK1 words (from <see cref="MacEfuseRegister"/>) keep the chip revision; null = not read.</summary>
    public Esp32RevisionFields? RevisionFields { get; init; }

    /// <summary>
    /// The RTC watchdog and super watchdog of chips with a USB-JTAG-serial peripheral (C3, S3, C6, H2). Over that USB link the
    /// loader does not reset them, so they can reset the board in the middle of a write: they are disabled (RTC WDT) and set to
    /// feed themselves (SWD) after connecting, unless a stub left running already did it.
    /// </summary>
    public Esp32Watchdogs? UsbWatchdogs { get; init; }

    /// <summary>
    /// RTC_CNTL_OPTION1_REG, whose bit 0 (RTC_CNTL_FORCE_DOWNLOAD_BOOT) makes the next reset boot into the loader again; cleared
    /// before the hard reset so the board runs its application (ESP32-S3 Technical Reference Manual, RTC_CNTL registers).
    /// </summary>
    public uint? ForceDownloadRegister { get; init; }

    public required string StubResource { get; init; }
    public required IReadOnlyList<string> Features { get; init; }

    public static IReadOnlyList<Esp32ChipInfo> All { get; } =
    [
        new()
        {
            Chip = Esp32Chip.Esp32, Name = "ESP32", Magic = 0x00F01D83, ImageChipId = 0, BootloaderOffset = 0x1000,
            RomBeginTakesEncryptedFlag = false, SupportsSecurityInfo = false, MacEfuseRegister = 0x3FF5A004,
            SpiRegisterBase = 0x3FF42000, SpiUsrOffset = 0x1C, SpiUsr1Offset = 0x20, SpiUsr2Offset = 0x24, SpiW0Offset = 0x80,
            SpiMosiDlenOffset = 0x28, SpiMisoDlenOffset = 0x2C, StubResource = "esp32.json", Features = ["WiFi", "BT", "Dual Core"],
        },
        new()
        {
            Chip = Esp32Chip.Esp32S2, Name = "ESP32-S2", Magic = 0x000007C6, ImageChipId = 2, BootloaderOffset = 0x1000,
            RomBeginTakesEncryptedFlag = true, SupportsSecurityInfo = true, MacEfuseRegister = 0x3F41A044,
            SpiRegisterBase = 0x3F402000, SpiUsrOffset = 0x18, SpiUsr1Offset = 0x1C, SpiUsr2Offset = 0x20, SpiW0Offset = 0x58,
            SpiMosiDlenOffset = 0x24, SpiMisoDlenOffset = 0x28, StubResource = "esp32s2.json",
            RevisionFields = new(MajorWord: 3, MajorShift: 18, MajorMask: 0x3, MinorHiWord: 3, MinorHiShift: 20, MinorLowWord: 4, MinorLowShift: 4, MinorLowMask: 0x7), Features = ["WiFi", "Single Core"],
        },
        new()
        {
            Chip = Esp32Chip.Esp32S3, Name = "ESP32-S3", ImageChipId = 9, BootloaderOffset = 0x0,
            RomBeginTakesEncryptedFlag = true, SupportsSecurityInfo = true, MacEfuseRegister = 0x60007044,
            SpiRegisterBase = 0x60002000, SpiUsrOffset = 0x18, SpiUsr1Offset = 0x1C, SpiUsr2Offset = 0x20, SpiW0Offset = 0x58,
            SpiMosiDlenOffset = 0x24, SpiMisoDlenOffset = 0x28, StubResource = "esp32s3.json", ForceDownloadRegister = 0x6000812C,
            UsbWatchdogs = new(RtcWdtConfig0: 0x60008098, RtcWdtWriteProtect: 0x600080B0, SwdConfig: 0x600080B4, SwdWriteProtect: 0x600080B8, SwdAutoFeed: 1u << 31, SwdKey: 0x8F1D312A),
            RevisionFields = new(MajorWord: 5, MajorShift: 24, MajorMask: 0x3, MinorHiWord: 5, MinorHiShift: 23, MinorLowWord: 3, MinorLowShift: 18, MinorLowMask: 0x7), Features = ["WiFi", "BLE", "Dual Core", "USB-OTG"],
        },
        new()
        {
            Chip = Esp32Chip.Esp32C3, Name = "ESP32-C3", ImageChipId = 5, BootloaderOffset = 0x0,
            RomBeginTakesEncryptedFlag = true, SupportsSecurityInfo = true, MacEfuseRegister = 0x60008844,
            SpiRegisterBase = 0x60002000, SpiUsrOffset = 0x18, SpiUsr1Offset = 0x1C, SpiUsr2Offset = 0x20, SpiW0Offset = 0x58,
            SpiMosiDlenOffset = 0x24, SpiMisoDlenOffset = 0x28, StubResource = "esp32c3.json",
            UsbWatchdogs = new(RtcWdtConfig0: 0x60008090, RtcWdtWriteProtect: 0x600080A8, SwdConfig: 0x600080AC, SwdWriteProtect: 0x600080B0, SwdAutoFeed: 1u << 31, SwdKey: 0x8F1D312A),
            RevisionFields = new(MajorWord: 5, MajorShift: 24, MajorMask: 0x3, MinorHiWord: 5, MinorHiShift: 23, MinorLowWord: 3, MinorLowShift: 18, MinorLowMask: 0x7), Features = ["WiFi", "BLE", "Single Core"],
        },
        new()
        {
            Chip = Esp32Chip.Esp32C6, Name = "ESP32-C6", ImageChipId = 13, BootloaderOffset = 0x0,
            RomBeginTakesEncryptedFlag = true, SupportsSecurityInfo = true, MacEfuseRegister = 0x600B0844,
            SpiRegisterBase = 0x60003000, SpiUsrOffset = 0x18, SpiUsr1Offset = 0x1C, SpiUsr2Offset = 0x20, SpiW0Offset = 0x58,
            SpiMosiDlenOffset = 0x24, SpiMisoDlenOffset = 0x28, StubResource = "esp32c6.json",
            UsbWatchdogs = new(RtcWdtConfig0: 0x600B1C00, RtcWdtWriteProtect: 0x600B1C18, SwdConfig: 0x600B1C1C, SwdWriteProtect: 0x600B1C20, SwdAutoFeed: 1u << 18, SwdKey: 0x50D83AA1),
            RevisionFields = new(MajorWord: 3, MajorShift: 22, MajorMask: 0x3, MinorHiWord: null, MinorHiShift: 0, MinorLowWord: 3, MinorLowShift: 18, MinorLowMask: 0xF), Features = ["WiFi 6", "BLE", "802.15.4", "Single Core"],
        },
        new()
        {
            Chip = Esp32Chip.Esp32H2, Name = "ESP32-H2", ImageChipId = 16, BootloaderOffset = 0x0,
            RomBeginTakesEncryptedFlag = true, SupportsSecurityInfo = true, MacEfuseRegister = 0x600B0844,
            SpiRegisterBase = 0x60003000, SpiUsrOffset = 0x18, SpiUsr1Offset = 0x1C, SpiUsr2Offset = 0x20, SpiW0Offset = 0x58,
            SpiMosiDlenOffset = 0x24, SpiMisoDlenOffset = 0x28, StubResource = "esp32h2.json",
            UsbWatchdogs = new(RtcWdtConfig0: 0x600B1C00, RtcWdtWriteProtect: 0x600B1C1C, SwdConfig: 0x600B1C20, SwdWriteProtect: 0x600B1C24, SwdAutoFeed: 1u << 18, SwdKey: 0x50D83AA1),
            RevisionFields = new(MajorWord: 3, MajorShift: 21, MajorMask: 0x3, MinorHiWord: null, MinorHiShift: 0, MinorLowWord: 3, MinorLowShift: 18, MinorLowMask: 0x7), Features = ["BLE", "802.15.4", "Single Core"],
        },
    ];

    public static Esp32ChipInfo Get(Esp32Chip chip) =>
        All.FirstOrDefault(c => c.Chip == chip) ?? throw new ArgumentOutOfRangeException(nameof(chip), chip, "Not a concrete chip.");

    public static Esp32ChipInfo? FromMagic(uint magic) => All.FirstOrDefault(c => c.Magic == magic);

    public static Esp32ChipInfo? FromChipId(int chipId) => All.FirstOrDefault(c => c.ImageChipId == chipId && c.SupportsSecurityInfo && c.Magic is null);

    public static string NameForImageChipId(int id) => All.FirstOrDefault(c => c.ImageChipId == id)?.Name ?? $"chip id {id}";
}

/// <summary>
/// Bit fields of the chip revision in eFuse BLOCK1 words: major, and minor = (hi bit &lt;&lt; 3) + low bits.
/// From the chips' eFuse tables (the same fields esptool reads).
/// </summary>
public sealed record Esp32RevisionFields(int MajorWord, int MajorShift, uint MajorMask, int? MinorHiWord, int MinorHiShift, int MinorLowWord, int MinorLowShift, uint MinorLowMask);

/// <summary>
/// Watchdog registers from the chips' Technical Reference Manuals: RTC_CNTL_WDTCONFIG0_REG / RTC_CNTL_WDTWPROTECT_REG and
/// RTC_CNTL_SWD_CONF_REG / RTC_CNTL_SWD_WPROTECT_REG (C3, S3: RTC_CNTL at 0x60008000), LP_WDT_RWDT_CONFIG0_REG /
/// LP_WDT_RWDT_WPROTECT_REG and LP_WDT_SWD_CONFIG_REG / LP_WDT_SWD_WPROTECT_REG (C6, H2: LP_WDT at 0x600B1C00). A register
/// is unlocked by writing its key to the write-protect register and locked again with 0.
/// </summary>
public sealed record Esp32Watchdogs(uint RtcWdtConfig0, uint RtcWdtWriteProtect, uint SwdConfig, uint SwdWriteProtect, uint SwdAutoFeed, uint SwdKey)
{
    /// <summary>The RTC watchdog's write-protect key (RTC_CNTL_WDT_WKEY / LP_WDT_RWDT_WKEY).</summary>
    public const uint RtcWdtKey = 0x50D83AA1;
}
