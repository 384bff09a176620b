using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.NanoFramework;

/// <summary>One ESP-IDF partition table entry.</summary>
public sealed record PartitionEntry(string Name, byte Type, byte SubType, uint Offset, uint Size, uint Flags)
{
    public const byte TypeApp = 0x00;
    public const byte TypeData = 0x01;

    /// <summary>nanoFramework's managed-code deployment area: a data partition of subtype 0x84.</summary>
    public const byte SubTypeDeployment = 0x84;

    public string OffsetHex => $"0x{Offset:X}";

    public override string ToString() => $"{Name} (type 0x{Type:X2}/0x{SubType:X2}) @ 0x{Offset:X}, {Size} bytes";
}

/// <summary>
/// The ESP-IDF binary partition table (at 0x8000): 32-byte entries with magic AA 50, an optional MD5 entry
/// (EB EB) after them, 0xFF padding at the end. See https://docs.espressif.com/projects/esp-idf/en/latest/esp32/api-guides/partition-tables.html
/// </summary>
public sealed class PartitionTable
{
    public const uint DefaultOffset = 0x8000;
    public const int MaxLength = 0xC00;
    private const int EntrySize = 32;

    private PartitionTable(IReadOnlyList<PartitionEntry> entries, bool hasMd5)
    {
        Entries = entries;
        HasMd5 = hasMd5;
    }

    public IReadOnlyList<PartitionEntry> Entries { get; }

    public bool HasMd5 { get; }

    /// <summary>App partitions start on a 64 KiB boundary (the flash MMU page), others on a 4 KiB sector (ESP-IDF gen_esp32part.py).</summary>
    public const uint AppAlignment = 0x10000;

    public const uint SectorSize = 0x1000;

    /// <summary>
    /// Parses and validates a table as ESP-IDF does (partition-tables documentation, gen_esp32part.py and the bootloader's
    /// esp_partition_table_verify): at most 0xC00 bytes including the MD5 row (what follows must be erased, 0xFF), a correct
    /// MD5 row when there is one, names of printable ASCII, app partitions on 64 KiB and the others on 4 KiB boundaries,
    /// sizes in whole sectors, no overlaps with each other or with the table's own sector. Malformed input is an InvalidData
    /// error (PartitionTableInvalid), never a crash.
    /// </summary>
    public static PartitionTable Parse(ReadOnlySpan<byte> data)
    {
        var entries = new List<PartitionEntry>();
        var hasMd5 = false;
        if (data.Length > MaxLength && data[MaxLength..].IndexOfAnyExcept((byte)0xFF) >= 0)
        {
            throw Invalid($"it is {data.Length} bytes; a partition table holds at most 0x{MaxLength:X} bytes (its MD5 row included), and writing more at 0x{DefaultOffset:X} would overwrite the partitions after it.");
        }

        var length = Math.Min(data.Length, MaxLength);
        var pos = 0;
        for (; pos + EntrySize <= length; pos += EntrySize)
        {
            var entry = data.Slice(pos, EntrySize);
            if (entry[0] == 0xAA && entry[1] == 0x50)
            {
                var nameBytes = entry.Slice(12, 16);
                var end = nameBytes.IndexOf((byte)0);
                var raw = end < 0 ? nameBytes : nameBytes[..end];
                if (raw.IndexOfAnyExceptInRange((byte)0x20, (byte)0x7E) >= 0)
                {
                    throw Invalid($"entry {entries.Count} has a name that is not printable ASCII.");
                }

                var name = Encoding.ASCII.GetString(raw);

                entries.Add(new PartitionEntry(
                    name, entry[2], entry[3],
                    BinaryPrimitives.ReadUInt32LittleEndian(entry[4..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(entry[8..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(entry[28..])));
                continue;
            }

            if (entry[0] == 0xEB && entry[1] == 0xEB)
            {
                var expected = MD5.HashData(data[..pos]);
                if (!entry.Slice(16, 16).SequenceEqual(expected))
                {
                    throw Invalid("its MD5 checksum does not match the entries.");
                }

                hasMd5 = true;
                break;
            }

            if (entry.IndexOfAnyExcept((byte)0xFF) < 0)
            {
                break;
            }

            throw Invalid($"unexpected bytes at offset 0x{pos:X} (expected an AA 50 entry, an EB EB checksum or 0xFF padding).");
        }

        if (entries.Count == 0)
        {
            throw Invalid("it has no entries (is the flash erased, or is this not a partition table?).");
        }

        for (var i = 0; i < entries.Count; i++)
        {
            var a = entries[i];
            if ((ulong)a.Offset + a.Size > 0x10000000UL)
            {
                throw Invalid($"partition '{a.Name}' ends beyond 256 MB.");
            }

            var alignment = a.Type == PartitionEntry.TypeApp ? AppAlignment : SectorSize;
            if (a.Offset % alignment != 0)
            {
                throw Invalid($"partition '{a.Name}' starts at 0x{a.Offset:X}, not on a 0x{alignment:X} boundary.");
            }

            if (a.Size == 0 || a.Size % SectorSize != 0)
            {
                throw Invalid($"partition '{a.Name}' is 0x{a.Size:X} bytes, not a whole number of 4 KiB sectors.");
            }

            if (a.Offset < DefaultOffset + SectorSize && (ulong)a.Offset + a.Size > DefaultOffset)
            {
                throw Invalid($"partition '{a.Name}' (0x{a.Offset:X}-0x{a.Offset + a.Size:X}) overlaps the partition table at 0x{DefaultOffset:X}.");
            }

            for (var j = i + 1; j < entries.Count; j++)
            {
                var b = entries[j];
                if (a.Offset < (ulong)b.Offset + b.Size && b.Offset < (ulong)a.Offset + a.Size && a.Size > 0 && b.Size > 0)
                {
                    throw Invalid($"partitions '{a.Name}' and '{b.Name}' overlap.");
                }
            }
        }

        return new PartitionTable(entries, hasMd5);
    }

    /// <summary>Encodes entries (used by tests and tools), with the MD5 entry when asked.</summary>
    public static byte[] Build(IEnumerable<PartitionEntry> entries, bool withMd5 = true)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var table = new byte[MaxLength];
        table.AsSpan().Fill(0xFF);
        var pos = 0;
        foreach (var e in entries)
        {
            var span = table.AsSpan(pos, EntrySize);
            span[0] = 0xAA;
            span[1] = 0x50;
            span[2] = e.Type;
            span[3] = e.SubType;
            BinaryPrimitives.WriteUInt32LittleEndian(span[4..], e.Offset);
            BinaryPrimitives.WriteUInt32LittleEndian(span[8..], e.Size);
            span.Slice(12, 16).Clear();
            Encoding.ASCII.GetBytes(e.Name.AsSpan(0, Math.Min(16, e.Name.Length)), span.Slice(12, 16));
            BinaryPrimitives.WriteUInt32LittleEndian(span[28..], e.Flags);
            pos += EntrySize;
        }

        if (withMd5)
        {
            var md5 = MD5.HashData(table.AsSpan(0, pos));
            var span = table.AsSpan(pos, EntrySize);
            span[0] = 0xEB;
            span[1] = 0xEB;
            span.Slice(2, 14).Fill(0xFF);
            md5.CopyTo(span[16..]);
        }

        return table;
    }

    /// <summary>Throws PartitionTableInvalid when a partition ends beyond a flash of <paramref name="flashSize"/> bytes.</summary>
    public void EnsureFits(long flashSize)
    {
        foreach (var entry in Entries)
        {
            if ((long)entry.Offset + entry.Size > flashSize)
            {
                throw Invalid($"partition '{entry.Name}' (0x{entry.Offset:X}, {entry.Size} bytes) ends beyond the {flashSize / (1024 * 1024)}MB flash.");
            }
        }
    }

    public PartitionEntry? Find(string name) => Entries.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.Ordinal));

    public PartitionEntry? Find(byte type, byte subType) => Entries.FirstOrDefault(e => e.Type == type && e.SubType == subType);

    /// <summary>The nanoFramework deployment partition (data, subtype 0x84).</summary>
    public PartitionEntry DeploymentPartition =>
        Find(PartitionEntry.TypeData, PartitionEntry.SubTypeDeployment)
        ?? throw new IoTHubMqttException(ErrorIds.DeploymentPartitionNotFound,
            "The partition table has no nanoFramework deployment partition (data, subtype 0x84).",
            "Flash a nanoFramework firmware package first (Install-Esp32Firmware -Package).");

    /// <summary>The application partition the bootloader starts (factory, else ota_0).</summary>
    public PartitionEntry? AppPartition => Find(PartitionEntry.TypeApp, 0x00) ?? Find(PartitionEntry.TypeApp, 0x10);

    private static IoTHubMqttException Invalid(string why) =>
        new(ErrorIds.PartitionTableInvalid, $"Not a valid partition table: {why}", "Use the partitions_*.bin of a firmware package built for this board.");
}
