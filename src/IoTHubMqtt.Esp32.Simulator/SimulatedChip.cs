namespace IoTHubMqtt.Esp32.Simulator;

/// <summary>The chips the simulator can be, with the register values the tools read to tell them apart.</summary>
public enum SimulatedChipType
{
    Esp32,
    Esp32S2,
    Esp32S3,
    Esp32C3,
    Esp32C6,
    Esp32H2,
}

internal sealed record SimulatedChip(
    SimulatedChipType Type, uint Magic, int? ChipId, bool SecurityInfoHasChipId, bool SecurityInfoSupported,
    bool RomBeginHasEncryptedWord, uint MacRegister, uint SpiBase, uint UsrOffset, uint Usr2Offset, uint W0Offset, string Stub)
{
    /// <summary>
    /// UART0's UART_CLKDIV_REG (base + 0x14, in each chip's technical reference manual): the divider of the UART clock the ROM
    /// programs for the current baud rate, which esptool reads to tell the crystal frequency.
    /// </summary>
    public uint UartClockDividerRegister => Type switch
    {
        SimulatedChipType.Esp32 => 0x3FF40014,
        SimulatedChipType.Esp32S2 => 0x3F400014,
        _ => 0x60000014,
    };

    /// <summary>The crystal the UART runs from in the loader: 40 MHz, 32 MHz on the ESP32-H2 (datasheets).</summary>
    public int CrystalHz => Type == SimulatedChipType.Esp32H2 ? 32_000_000 : 40_000_000;

    public static SimulatedChip Get(SimulatedChipType type) => type switch
    {
        SimulatedChipType.Esp32 => new(type, 0x00F01D83, null, false, false, false, 0x3FF5A004, 0x3FF42000, 0x1C, 0x24, 0x80, "esp32.json"),
        SimulatedChipType.Esp32S2 => new(type, 0x000007C6, null, false, true, true, 0x3F41A044, 0x3F402000, 0x18, 0x20, 0x58, "esp32s2.json"),
        SimulatedChipType.Esp32S3 => new(type, 0x00000009, 9, true, true, true, 0x60007044, 0x60002000, 0x18, 0x20, 0x58, "esp32s3.json"),
        SimulatedChipType.Esp32C3 => new(type, 0x6921506F, 5, true, true, true, 0x60008844, 0x60002000, 0x18, 0x20, 0x58, "esp32c3.json"),
        SimulatedChipType.Esp32C6 => new(type, 0x2CE0806F, 13, true, true, true, 0x600B0844, 0x60003000, 0x18, 0x20, 0x58, "esp32c6.json"),
        SimulatedChipType.Esp32H2 => new(type, 0xD7B73E80, 16, true, true, true, 0x600B0844, 0x60003000, 0x18, 0x20, 0x58, "esp32h2.json"),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
