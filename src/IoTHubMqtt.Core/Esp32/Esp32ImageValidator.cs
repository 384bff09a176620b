using System.Buffers.Binary;
using System.Security.Cryptography;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>What a valid ESP application or bootloader image's header says.</summary>
public sealed record Esp32ImageInfo(int ChipId, int SegmentCount, uint EntryPoint, bool HashAppended, int Length);

/// <summary>
/// Checks an ESP-IDF application or bootloader image before anything is written, as the ROM and the second-stage bootloader
/// will check it at boot (Espressif's "Firmware Image Format": https://docs.espressif.com/projects/esptool/en/latest/esp32/advanced-topics/firmware-image-format.html):
/// <list type="bullet">
/// <item>magic byte 0xE9, segment count (at most 16, ESP-IDF's ESP_IMAGE_MAX_SEGMENTS), 24-byte header with the chip id at byte 12;</item>
/// <item>segments (load address, length, data) that lie within the file;</item>
/// <item>the checksum byte (0xEF XOR every segment data byte) at the end of the 16-byte padded block after the segments;</item>
/// <item>the SHA-256 of everything before it, appended when header byte 23 (hash_appended) is 1.</item>
/// </list>
/// Anything else (random bytes, a truncated download, an HTML error page, an ELF file) is an error naming the file.
/// </summary>
public static class Esp32ImageValidator
{
    public const byte Magic = 0xE9;

    /// <summary>ESP-IDF's ESP_IMAGE_MAX_SEGMENTS (bootloader_support/include/esp_image_format.h).</summary>
    public const int MaxSegments = 16;

    public const int HeaderLength = 24;
    private const int SegmentHeaderLength = 8;
    private const byte ChecksumSeed = 0xEF;

    /// <summary>Validates <paramref name="image"/> (named <paramref name="name"/> in errors); returns what its header says.</summary>
    public static Esp32ImageInfo Validate(ReadOnlySpan<byte> image, string name)
    {
        if (image.Length == 0)
        {
            throw Invalid(ErrorIds.Esp32EmptyImage, name, "it is empty");
        }

        if (image[0] != Magic)
        {
            throw Invalid(ErrorIds.Esp32ImageInvalid, name, $"it does not start with the ESP image magic byte 0xE9 ({Describe(image)})");
        }

        if (image.Length < HeaderLength)
        {
            throw Invalid(ErrorIds.Esp32ImageInvalid, name, $"it is {image.Length} bytes, shorter than an image header ({HeaderLength} bytes)");
        }

        var segments = image[1];
        if (segments is 0 or > MaxSegments)
        {
            throw Invalid(ErrorIds.Esp32ImageInvalid, name, $"its header says {segments} segments (an image has 1 to {MaxSegments})");
        }

        var chipId = BinaryPrimitives.ReadUInt16LittleEndian(image[12..]);
        if (Esp32ChipInfo.All.All(c => c.ImageChipId != chipId))
        {
            throw Invalid(ErrorIds.Esp32ImageInvalid, name, $"its header names chip id {chipId}, which is not a supported chip");
        }

        var hashAppended = image[23] switch
        {
            0 => false,
            1 => true,
            var other => throw Invalid(ErrorIds.Esp32ImageInvalid, name, $"its hash-appended flag is {other} (0 or 1)"),
        };

        byte checksum = ChecksumSeed;
        var pos = HeaderLength;
        for (var i = 0; i < segments; i++)
        {
            if (pos + SegmentHeaderLength > image.Length)
            {
                throw Invalid(ErrorIds.Esp32ImageInvalid, name, $"it is truncated in the header of segment {i + 1} of {segments}");
            }

            var length = BinaryPrimitives.ReadUInt32LittleEndian(image[(pos + 4)..]);
            if (length > (uint)(image.Length - pos - SegmentHeaderLength))
            {
                throw Invalid(ErrorIds.Esp32ImageInvalid, name, $"segment {i + 1} of {segments} claims {length} bytes, past the end of the file");
            }

            foreach (var b in image.Slice(pos + SegmentHeaderLength, (int)length))
            {
                checksum ^= b;
            }

            pos += SegmentHeaderLength + (int)length;
        }

        // Zero padding, then the checksum as the last byte of a 16-byte block.
        var end = pos + 16 - (pos % 16);
        if (end > image.Length)
        {
            throw Invalid(ErrorIds.Esp32ImageInvalid, name, "it is truncated before its checksum");
        }

        if (image[end - 1] != checksum)
        {
            throw Invalid(ErrorIds.Esp32ImageChecksumMismatch, name, $"its checksum is 0x{image[end - 1]:X2} but its segments add up to 0x{checksum:X2} (corrupted or truncated)");
        }

        if (hashAppended)
        {
            if (end + 32 > image.Length)
            {
                throw Invalid(ErrorIds.Esp32ImageInvalid, name, "its header says a SHA-256 digest is appended, but the file ends before it");
            }

            if (!SHA256.HashData(image[..end]).AsSpan().SequenceEqual(image.Slice(end, 32)))
            {
                throw Invalid(ErrorIds.Esp32ImageChecksumMismatch, name, "its appended SHA-256 digest does not match its contents (corrupted)");
            }

            end += 32;
        }

        return new Esp32ImageInfo(chipId, segments, BinaryPrimitives.ReadUInt32LittleEndian(image[4..]), hashAppended, end);
    }

    /// <summary>What a file that is not an image looks like, to say so in the error.</summary>
    private static string Describe(ReadOnlySpan<byte> data)
    {
        if (data.StartsWith("\x7F"u8) && data.Length >= 4 && data[1..4].SequenceEqual("ELF"u8))
        {
            return "it is an ELF file: flash the .bin the build made from it (esptool elf2image)";
        }

        if (data.StartsWith("PK\x03\x04"u8))
        {
            return "it is a zip file: pass it to -Package, or extract the image";
        }

        var head = data[..Math.Min(data.Length, 256)];
        if (head.IndexOfAnyExcept((byte)0xFF) < 0)
        {
            return "it is all 0xFF, like erased flash";
        }

        var text = head.IndexOfAnyInRange((byte)0, (byte)8) < 0 && head.IndexOfAnyInRange((byte)0x0E, (byte)0x1F) < 0;
        if (text && head.IndexOf("<"u8) >= 0 && (head.IndexOf("html"u8) >= 0 || head.IndexOf("HTML"u8) >= 0))
        {
            return "it is an HTML page, perhaps an error page saved instead of the download";
        }

        return text ? "it is text" : $"first byte 0x{data[0]:X2}";
    }

    private static IoTHubMqttException Invalid(string errorId, string name, string why) => new(
        errorId, $"'{name}' is not a valid ESP image: {why}. Nothing was written.",
        "Use the image files from the build or firmware package for this board; to write raw data (a filesystem or NVS image) at an offset, use -Raw.",
        name);
}
