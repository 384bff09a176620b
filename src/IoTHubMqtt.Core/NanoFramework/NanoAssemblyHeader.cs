using System.Buffers.Binary;
using System.Text;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.NanoFramework;

/// <summary>
/// The header of a nanoFramework <c>.pe</c> assembly (<c>CLR_RECORD_ASSEMBLY</c> in nf-interpreter
/// <c>src/CLR/Include/nanoCLR_Types.h</c>, written by the metadata processor), little-endian, 132 bytes:
/// <code>
///   0 marker[8]  "NFMRK2\0\0"           36 startOfTables[19] u32 (offsets from the header start)
///   8 headerCRC                          112 paddingOfTables[20] u8
///  12 assemblyCRC                        132 tables…  (TotalSize = startOfTables[TBL_EndOfAssembly = 18])
///  16 flags          20 nativeMethodsChecksum
///  24 version (major, minor, build, revision u16)
///  32 assemblyName (string index)  34 stringTableVersion (1)
/// </code>
/// headerCRC covers the 132 header bytes with the field itself zeroed; assemblyCRC covers bytes 132..TotalSize. Both use the
/// nanoFramework CRC-32 (polynomial 0x04C11DB7, MSB first, initial value 0, no final XOR): see <see cref="NanoCrc32"/>.
/// </summary>
public sealed class NanoAssemblyHeader
{
    public const int Size = 132;
    public const int TableCount = 19;
    public const int AssemblyRefTable = 0;
    public const int StringsTable = 14;
    public const int EndOfAssemblyTable = 18;
    public const int HeaderCrcOffset = 8;
    public const int AssemblyCrcOffset = 12;
    public const int StartOfTablesOffset = 36;
    public const int PaddingOfTablesOffset = 112;
    public const int AssemblyRefRecordSize = 10;

    /// <summary>"NFMRK2" and its terminator: what the runtime compares.</summary>
    public static ReadOnlySpan<byte> Marker => "NFMRK2\0"u8;

    private NanoAssemblyHeader()
    {
    }

    public required string Name { get; init; }

    public required Version Version { get; init; }

    public uint HeaderCrc { get; private init; }

    public uint AssemblyCrc { get; private init; }

    public uint Flags { get; private init; }

    public uint NativeMethodsChecksum { get; private init; }

    /// <summary>The assembly's size as the runtime walks it (startOfTables[TBL_EndOfAssembly]).</summary>
    public int TotalSize { get; private init; }

    /// <summary>Names of referenced assemblies that could be read from the string table.</summary>
    public IReadOnlyList<string> References { get; private init; } = [];

    /// <summary>Validates and reads a <c>.pe</c> file's header. <paramref name="fileName"/> is named in errors, and its name
    /// without extension names the assembly when the assembly's name is one of the runtime's built-in strings.</summary>
    public static NanoAssemblyHeader Parse(ReadOnlySpan<byte> pe, string fileName)
    {
        var fallbackName = Path.GetFileNameWithoutExtension(fileName);
        if (pe.Length < Size)
        {
            throw Bad(ErrorIds.NanoFrameworkPeTruncated, $"'{fileName}' is {pe.Length} bytes, shorter than a nanoFramework assembly header ({Size} bytes).", fileName);
        }

        if (pe[..6].SequenceEqual("NFMRK1"u8))
        {
            throw Bad(ErrorIds.NanoFrameworkPeOutdated, $"'{fileName}' has the old NFMRK1 assembly format that current nanoFramework firmware does not load.", fileName,
                "Rebuild the app with a current nanoFramework extension and packages.");
        }

        if (!pe[..Marker.Length].SequenceEqual(Marker))
        {
            throw Bad(ErrorIds.NanoFrameworkPeBadMarker, $"'{fileName}' is not a nanoFramework assembly: it does not start with the NFMRK2 marker.", fileName);
        }

        Span<byte> header = stackalloc byte[Size];
        pe[..Size].CopyTo(header);
        var headerCrc = BinaryPrimitives.ReadUInt32LittleEndian(header[HeaderCrcOffset..]);
        header.Slice(HeaderCrcOffset, 4).Clear();
        if (NanoCrc32.Compute(header) != headerCrc)
        {
            throw Bad(ErrorIds.NanoFrameworkPeHeaderCorrupt, $"The header of '{fileName}' is corrupt (header CRC mismatch).", fileName);
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(pe[34..]) != 1)
        {
            throw Bad(ErrorIds.NanoFrameworkPeHeaderCorrupt, $"'{fileName}' has an unknown string table version.", fileName);
        }

        var starts = new uint[TableCount];
        for (var i = 0; i < TableCount; i++)
        {
            starts[i] = BinaryPrimitives.ReadUInt32LittleEndian(pe[(StartOfTablesOffset + (4 * i))..]);
        }

        var totalSize = starts[EndOfAssemblyTable];
        if (totalSize < Size || totalSize != pe.Length)
        {
            throw Bad(ErrorIds.NanoFrameworkPeSizeMismatch, $"'{fileName}' is {pe.Length} bytes but its header says {totalSize}.", fileName);
        }

        var assemblyCrc = BinaryPrimitives.ReadUInt32LittleEndian(pe[AssemblyCrcOffset..]);
        if (NanoCrc32.Compute(pe[Size..(int)totalSize]) != assemblyCrc)
        {
            throw Bad(ErrorIds.NanoFrameworkPeAssemblyCorrupt, $"The contents of '{fileName}' are corrupt (assembly CRC mismatch).", fileName);
        }

        for (var i = 0; i < TableCount - 1; i++)
        {
            if (starts[i] < Size || starts[i] > starts[i + 1])
            {
                throw Bad(ErrorIds.NanoFrameworkPeHeaderCorrupt, $"The table offsets in '{fileName}' are not in order.", fileName);
            }
        }

        var stringsEnd = Math.Max(starts[StringsTable], starts[StringsTable + 1] - pe[PaddingOfTablesOffset + StringsTable]);
        ReadOnlySpan<byte> strings = pe[(int)starts[StringsTable]..(int)stringsEnd];
        static string? StringAt(ReadOnlySpan<byte> strings, ushort index)
        {
            if (index >= strings.Length)
            {
                return null; // one of the runtime's well-known strings
            }

            var end = strings[index..].IndexOf((byte)0);
            return end < 0 ? null : Encoding.UTF8.GetString(strings.Slice(index, end));
        }

        var references = new List<string>();
        var refStart = (int)starts[AssemblyRefTable];
        var refLength = (int)(starts[AssemblyRefTable + 1] - starts[AssemblyRefTable] - pe[PaddingOfTablesOffset + AssemblyRefTable]);
        for (var offset = 0; offset + AssemblyRefRecordSize <= refLength; offset += AssemblyRefRecordSize)
        {
            var name = StringAt(strings, BinaryPrimitives.ReadUInt16LittleEndian(pe[(refStart + offset)..]));
            if (name is not null)
            {
                references.Add(name);
            }
        }

        return new NanoAssemblyHeader
        {
            Name = StringAt(strings, BinaryPrimitives.ReadUInt16LittleEndian(pe[32..])) ?? fallbackName,
            Version = new Version(BinaryPrimitives.ReadUInt16LittleEndian(pe[24..]), BinaryPrimitives.ReadUInt16LittleEndian(pe[26..]),
                BinaryPrimitives.ReadUInt16LittleEndian(pe[28..]), BinaryPrimitives.ReadUInt16LittleEndian(pe[30..])),
            HeaderCrc = headerCrc,
            AssemblyCrc = assemblyCrc,
            Flags = BinaryPrimitives.ReadUInt32LittleEndian(pe[16..]),
            NativeMethodsChecksum = BinaryPrimitives.ReadUInt32LittleEndian(pe[20..]),
            TotalSize = (int)totalSize,
            References = references,
        };
    }

    private static IoTHubMqttException Bad(string errorId, string message, string file, string? action = null) =>
        new(errorId, message, action ?? "Use the .pe files from the app's bin folder after a successful build.", file);
}
