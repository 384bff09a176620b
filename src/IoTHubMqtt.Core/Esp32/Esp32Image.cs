using System.Buffers.Binary;
using System.Security.Cryptography;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>SPI flash parameters written into the bootloader image header (byte 2 mode, byte 3 size/frequency).</summary>
public enum Esp32FlashMode
{
    Keep = -1,
    Qio = 0,
    Qout = 1,
    Dio = 2,
    Dout = 3,
}

/// <summary>The ESP-IDF application/bootloader image header (magic 0xE9), read and patched without running anything.</summary>
public static class Esp32Image
{
    public const byte Magic = 0xE9;

    /// <summary>The chip id in the extended header, or null when <paramref name="image"/> is not an ESP image.</summary>
    public static int? ChipId(ReadOnlySpan<byte> image) =>
        image.Length >= 24 && image[0] == Magic ? BinaryPrimitives.ReadUInt16LittleEndian(image[12..]) : null;

    /// <summary>The header code of a flash size (1 MB = 0 … 128 MB = 7); null for other sizes.</summary>
    public static int? SizeCode(long flashSize) => flashSize switch
    {
        0x100000 => 0,
        0x200000 => 1,
        0x400000 => 2,
        0x800000 => 3,
        0x1000000 => 4,
        0x2000000 => 5,
        0x4000000 => 6,
        0x8000000 => 7,
        _ => null,
    };

    /// <summary>
    /// The header code (low nibble of byte 3) of a flash frequency such as "40m" on <paramref name="chip"/>; null when the chip
    /// has no such frequency. The codes come from the chips' bootloader headers: the classic ESP32 family and S2/S3/C3 share
    /// one table, the C6 runs its flash at 80 MHz for codes 0 (80m, 40m), the H2 counts from a 48 MHz clock.
    /// </summary>
    public static int? FrequencyCode(Esp32Chip chip, string frequency)
    {
        foreach (var (name, code) in FrequencyTable(chip))
        {
            if (string.Equals(name, frequency, StringComparison.OrdinalIgnoreCase))
            {
                return code;
            }
        }

        return null;
    }

    /// <summary>The frequency names <paramref name="chip"/> accepts, fastest first.</summary>
    public static IEnumerable<string> FrequencyNames(Esp32Chip chip) => FrequencyTable(chip).Select(e => e.Name);

    private static (string Name, int Code)[] FrequencyTable(Esp32Chip chip) => chip switch
    {
        Esp32Chip.Esp32C6 => [("80m", 0x0), ("40m", 0x0), ("20m", 0x2)],
        Esp32Chip.Esp32H2 => [("48m", 0xF), ("24m", 0x0), ("16m", 0x1), ("12m", 0x2)],
        _ => [("80m", 0xF), ("40m", 0x0), ("26m", 0x1), ("20m", 0x2)],
    };

    /// <summary>
    /// Returns a copy of a bootloader image with the flash mode/size/frequency patched, and its appended SHA-256
    /// (when the header says there is one) recomputed so the ROM still accepts it.
    /// </summary>
    public static byte[] PatchHeader(ReadOnlySpan<byte> image, Esp32FlashMode mode, long? flashSize, int? frequencyCode)
    {
        var copy = image.ToArray();
        if (copy.Length < 24 || copy[0] != Magic)
        {
            return copy;
        }

        if (mode != Esp32FlashMode.Keep)
        {
            copy[2] = (byte)mode;
        }

        if (flashSize is { } size && SizeCode(size) is { } code)
        {
            copy[3] = (byte)((copy[3] & 0x0F) | (code << 4));
        }

        if (frequencyCode is { } freq)
        {
            copy[3] = (byte)((copy[3] & 0xF0) | (freq & 0x0F));
        }

        if (copy[23] == 1 && HashedLength(copy) is { } end && end + 32 <= copy.Length)
        {
            SHA256.HashData(copy.AsSpan(0, end)).CopyTo(copy.AsSpan(end));
        }

        return copy;
    }

    /// <summary>Length of header + segments + checksum padding (where the SHA-256 starts), or null if malformed.</summary>
    public static int? HashedLength(ReadOnlySpan<byte> image)
    {
        if (image.Length < 24)
        {
            return null;
        }

        var segments = image[1];
        var pos = 24;
        for (var i = 0; i < segments; i++)
        {
            if (pos + 8 > image.Length)
            {
                return null;
            }

            var len = BinaryPrimitives.ReadUInt32LittleEndian(image[(pos + 4)..]);
            if (len > (uint)(image.Length - pos - 8))
            {
                return null;
            }

            pos += 8 + (int)len;
        }

        // One checksum byte, placed so the image length is a multiple of 16.
        pos += 16 - (pos % 16);
        return pos <= image.Length ? pos : null;
    }
}
