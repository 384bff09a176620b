using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace IoTHubMqtt.Module.Tests.Esp32;

/// <summary>Files for the ESP32 cmdlet tests: images with ESP headers, a nanoFramework-like package, in a temp folder.</summary>
internal sealed class Esp32Files : IDisposable
{
    public Esp32Files() => Directory.CreateDirectory(Root);

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "esp32-module-" + Guid.NewGuid().ToString("N"));

    public string Write(string name, byte[] data)
    {
        var path = Path.Combine(Root, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, data);
        return path;
    }

    /// <summary>An ESP app/bootloader image: magic E9, chip id at byte 12, one segment of semi-random bytes.</summary>
    public static byte[] App(int chipId, int length, int seed)
    {
        var image = new byte[length];
        var random = new Random(seed);
        for (var i = 24; i < length; i++)
        {
            image[i] = random.Next(3) == 0 ? (byte)random.Next(256) : (byte)(i % 7);
        }

        image[0] = 0xE9;
        image[1] = 1;
        image[2] = 2;
        image[3] = 0x20;
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(12), (ushort)chipId);
        image[23] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(28), (uint)(length - 48));

        // The checksum (0xEF XOR the segment data) is the last byte of the 16-byte block after the segment.
        byte checksum = 0xEF;
        foreach (var b in image.AsSpan(32, length - 48))
        {
            checksum ^= b;
        }

        image[^1] = checksum;
        return image;
    }

    /// <summary>A deployment image: nanoFramework assemblies (synthetic .pe files) concatenated.</summary>
    public static byte[] Deployment(params string[] names) =>
        names.SelectMany(name => { var pe = IoTHubMqtt.Tests.Shared.SyntheticPe.Create(name); return pe.Concat(new byte[((pe.Length + 3) & ~3) - pe.Length]); }).ToArray();

    /// <summary>
    /// An ESP-IDF partition table with a nanoFramework deployment partition (data/0x84) at <paramref name="deployOffset"/>
    /// and, when <paramref name="configSize"/> is not 0, a littlefs <c>config</c> partition (data/0x83) right after it.
    /// </summary>
    public static byte[] PartitionTable(uint deployOffset, uint deploySize, uint configSize = 0)
    {
        var entries = new List<(string Name, byte Type, byte SubType, uint Offset, uint Size)>
        {
            ("nvs", 1, 2, 0x9000, 0x6000),
            ("factory", 0, 0, 0x10000, deployOffset - 0x10000),
            ("deploy", 1, 0x84, deployOffset, deploySize),
        };
        if (configSize != 0)
        {
            entries.Add(("config", 1, 0x83, deployOffset + deploySize, configSize));
        }

        var table = Enumerable.Repeat((byte)0xFF, 0xC00).ToArray();
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            var span = table.AsSpan(i * 32, 32);
            span[0] = 0xAA;
            span[1] = 0x50;
            span[2] = e.Type;
            span[3] = e.SubType;
            BinaryPrimitives.WriteUInt32LittleEndian(span[4..], e.Offset);
            BinaryPrimitives.WriteUInt32LittleEndian(span[8..], e.Size);
            span.Slice(12, 16).Clear();
            Encoding.ASCII.GetBytes(e.Name, span[12..]);
            BinaryPrimitives.WriteUInt32LittleEndian(span[28..], 0);
        }

        var md5 = table.AsSpan(entries.Count * 32, 32);
        md5[0] = 0xEB;
        md5[1] = 0xEB;
        MD5.HashData(table.AsSpan(0, entries.Count * 32)).CopyTo(md5[16..]);
        return table;
    }

    public string Package(int chipId, uint deployOffset, uint configSize = 0)
    {
        Write("package/bootloader.bin", App(chipId, 8 * 1024, 1));
        Write("package/partitions_4mb.bin", PartitionTable(deployOffset, 0x20000, configSize));
        Write("package/nanoCLR.bin", App(chipId, 64 * 1024, 2));
        return Path.Combine(Root, "package");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, true);
        }
        catch (IOException)
        {
        }
    }
}
