using System.Buffers.Binary;
using System.Text;

namespace IoTHubMqtt.Tests.Shared;

/// <summary>
/// Writes small nanoFramework <c>.pe</c> assemblies with the real header layout (CLR_RECORD_ASSEMBLY, marker NFMRK2, 19 table
/// offsets, 20 padding bytes, header and assembly CRC-32 with polynomial 0x04C11DB7 / initial 0), an AssemblyRef table and a
/// string table, and opaque "byte code". The CRC here is computed bit by bit, independently of the table-driven one under test.
/// </summary>
public static class SyntheticPe
{
    public const int HeaderSize = 132;

    public static byte[] Create(string name, Version? version = null, string[]? references = null, int codeBytes = 37, bool useWellKnownName = false)
    {
        version ??= new Version(1, 2, 3, 4);
        references ??= [];

        var strings = new List<byte>();
        var nameIndex = useWellKnownName ? (ushort)0xFFF0 : AddString(strings, name);
        var refIndexes = references.Select(r => AddString(strings, r)).ToArray();

        var tables = new byte[18][];
        for (var i = 0; i < tables.Length; i++)
        {
            tables[i] = [];
        }

        var assemblyRefs = new byte[refIndexes.Length * 10];
        for (var i = 0; i < refIndexes.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(assemblyRefs.AsSpan(i * 10), refIndexes[i]);
            BinaryPrimitives.WriteUInt16LittleEndian(assemblyRefs.AsSpan((i * 10) + 2), 1);
        }

        tables[0] = assemblyRefs;
        tables[14] = [.. strings];
        var code = new byte[codeBytes];
        new Random(name.GetHashCode(StringComparison.Ordinal)).NextBytes(code);
        tables[16] = code;

        var body = new List<byte>();
        var starts = new uint[19];
        var paddings = new byte[20];
        for (var i = 0; i < 18; i++)
        {
            starts[i] = (uint)(HeaderSize + body.Count);
            body.AddRange(tables[i]);
            var pad = (4 - (tables[i].Length % 4)) % 4;
            paddings[i] = (byte)pad;
            body.AddRange(new byte[pad]);
        }

        starts[18] = (uint)(HeaderSize + body.Count);
        var pe = new byte[HeaderSize + body.Count];
        Encoding.ASCII.GetBytes("NFMRK2").CopyTo(pe, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(pe.AsSpan(20), 0xC0FFEE);
        BinaryPrimitives.WriteUInt16LittleEndian(pe.AsSpan(24), (ushort)version.Major);
        BinaryPrimitives.WriteUInt16LittleEndian(pe.AsSpan(26), (ushort)version.Minor);
        BinaryPrimitives.WriteUInt16LittleEndian(pe.AsSpan(28), (ushort)version.Build);
        BinaryPrimitives.WriteUInt16LittleEndian(pe.AsSpan(30), (ushort)version.Revision);
        BinaryPrimitives.WriteUInt16LittleEndian(pe.AsSpan(32), nameIndex);
        BinaryPrimitives.WriteUInt16LittleEndian(pe.AsSpan(34), 1);
        for (var i = 0; i < 19; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(pe.AsSpan(36 + (4 * i)), starts[i]);
        }

        paddings.CopyTo(pe, 112);
        body.CopyTo(pe, HeaderSize);
        Seal(pe);
        return pe;
    }

    /// <summary>Recomputes both CRCs (after a test changed bytes on purpose).</summary>
    public static void Seal(byte[] pe)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(pe.AsSpan(12), Crc(pe.AsSpan(HeaderSize)));
        BinaryPrimitives.WriteUInt32LittleEndian(pe.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(pe.AsSpan(8), Crc(pe.AsSpan(0, HeaderSize)));
    }

    public static uint Crc(ReadOnlySpan<byte> data)
    {
        uint crc = 0;
        foreach (var b in data)
        {
            crc ^= (uint)b << 24;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 0x80000000) != 0 ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
            }
        }

        return crc;
    }

    private static ushort AddString(List<byte> strings, string s)
    {
        var index = (ushort)strings.Count;
        strings.AddRange(Encoding.UTF8.GetBytes(s));
        strings.Add(0);
        return index;
    }
}
