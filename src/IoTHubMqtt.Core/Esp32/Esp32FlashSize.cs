namespace IoTHubMqtt.Core.Esp32;

/// <summary>
/// The flash size from the JEDEC id the SPI flash answers to RDID (0x9F): manufacturer, memory type, capacity. The capacity
/// byte is log2 of the size for 0x12-0x1C (256 KB to 256 MB); some vendors code 64-256 MB as 0x20-0x22 and their 1.8 V parts
/// as 0x32-0x3A (256 KB to 64 MB); Adesto (manufacturer 0x1F) puts 512 KB-16 MB in the low 5 bits of the second byte as
/// 0x04-0x09. These are the sizes Espressif's flasher recognises when it detects the flash size
/// (https://docs.espressif.com/projects/esptool/en/latest/esp32/esptool/advanced-options.html#flash-size); anything else is
/// unknown, never guessed.
/// </summary>
public static class Esp32FlashSize
{
    public const byte AdestoManufacturer = 0x1F;

    /// <summary>The size in bytes for a 24-bit JEDEC id (manufacturer in the low byte), or null when the id is not a known size.</summary>
    public static long? FromJedecId(uint jedecId)
    {
        var manufacturer = (byte)jedecId;
        if (manufacturer == AdestoManufacturer)
        {
            var code = (jedecId >> 8) & 0x1F;
            return code is >= 0x04 and <= 0x09 ? 512L * 1024 << (int)(code - 0x04) : null;
        }

        var capacity = (jedecId >> 16) & 0xFF;
        return capacity switch
        {
            >= 0x12 and <= 0x1C => 1L << (int)capacity,
            >= 0x20 and <= 0x22 => 64L * 1024 * 1024 << (int)(capacity - 0x20),
            >= 0x32 and <= 0x3A => 256L * 1024 << (int)(capacity - 0x32),
            _ => null,
        };
    }
}
