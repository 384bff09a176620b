using System.Buffers.Binary;
using IoTHubMqtt.Core.NanoFramework;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>Images shaped like real ones: ESP image headers with segments, firmware-like mixed content.</summary>
internal static class TestImages
{
    public static byte[] Bootloader(int chipId, bool hashAppended = false, int segmentLength = 4096) => App(chipId, segmentLength, hashAppended, seed: 1);

    /// <summary>An ESP app image (magic E9, chip id, one segment of code-like bytes, checksum, optional SHA-256).</summary>
    public static byte[] App(int chipId, int segmentLength, bool hashAppended = false, int seed = 2)
    {
        var header = 24 + 8 + segmentLength;
        var padded = header + (16 - (header % 16));
        var image = new byte[padded + (hashAppended ? 32 : 0)];
        image[0] = 0xE9;
        image[1] = 1;
        image[2] = 0x02;
        image[3] = 0x20;
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(4), 0x40080000);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(12), (ushort)chipId);
        image[23] = hashAppended ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(24), 0x3FFF0000);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(28), (uint)segmentLength);
        FirmwareLike(segmentLength, seed).CopyTo(image, 32);
        return Seal(image);
    }

    /// <summary>Sets the checksum byte (0xEF XOR the segment data) and, when the header says so, the appended SHA-256.</summary>
    public static byte[] Seal(byte[] image)
    {
        byte checksum = 0xEF;
        var pos = 24;
        for (var i = 0; i < image[1]; i++)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(pos + 4));
            foreach (var b in image.AsSpan(pos + 8, length))
            {
                checksum ^= b;
            }

            pos += 8 + length;
        }

        var end = pos + 16 - (pos % 16);
        image[end - 1] = checksum;
        if (image[23] == 1)
        {
            System.Security.Cryptography.SHA256.HashData(image.AsSpan(0, end)).CopyTo(image, end);
        }

        return image;
    }

    /// <summary>Bytes that compress like firmware (see <see cref="FirmwareLikeBytes"/>).</summary>
    public static byte[] FirmwareLike(int length, int seed) => FirmwareLikeBytes.Create(length, seed);

    public static byte[] NanoPartitionTable(uint deploymentOffset = 0x1E0000, uint deploymentSize = 0x40000) => PartitionTable.Build(
    [
        new PartitionEntry("nvs", 1, 0x02, 0x9000, 0x6000, 0),
        new PartitionEntry("phy_init", 1, 0x01, 0xF000, 0x1000, 0),
        new PartitionEntry("factory", 0, 0x00, 0x10000, deploymentOffset - 0x10000, 0),
        new PartitionEntry("deploy", 1, 0x84, deploymentOffset, deploymentSize, 0),
        new PartitionEntry("config", 1, 0x81, deploymentOffset + deploymentSize, 0x10000, 0),
    ]);

    /// <summary>Writes a nanoFramework-like package folder and returns its path.</summary>
    public static string Package(string root, int chipId, uint deploymentOffset = 0x1E0000)
    {
        Directory.CreateDirectory(root);
        File.WriteAllBytes(Path.Combine(root, "bootloader.bin"), Bootloader(chipId));
        File.WriteAllBytes(Path.Combine(root, "partitions_4mb.bin"), NanoPartitionTable(deploymentOffset));
        File.WriteAllBytes(Path.Combine(root, "nanoCLR.bin"), App(chipId, 48 * 1024, seed: 3));
        return root;
    }
}
