using System.Buffers.Binary;
using System.Text;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.NanoFramework;

/// <summary>
/// Builds a littlefs (on-disk version 2.0) image holding a few files in the root directory, to write to an ESP32 data
/// partition of subtype littlefs (nanoFramework mounts its <c>config</c> partition as the internal drive <c>I:</c>), and reads
/// such images back. Format: https://github.com/littlefs-project/littlefs/blob/master/SPEC.md
/// <list type="bullet">
/// <item>Blocks 0 and 1 are the root metadata pair; block 0 holds one commit with revision 1, block 1 stays erased.
/// The commit is: the revision, the superblock entry (id 0: name tag "littlefs" and an inline struct with version 2.0,
/// block size, block count and 0 for name/file/attr max, which makes the device keep its own limits), then for each file
/// (ids 1…n, sorted by name) a regular-file name tag and a CTZ struct tag, and a CRC tag.</item>
/// <item>Tags are big-endian and each is XORed with the previous one (starting from 0xFFFFFFFF); the CRC (reflected
/// polynomial 0xEDB88320, initial 0xFFFFFFFF, no final XOR) covers the block from the revision to the CRC tag.</item>
/// <item>File contents are CTZ skip-lists from block 2 on: block k &gt; 0 of a file starts with ctz(k)+1 pointers to blocks
/// k - 2^i; the struct tag names the last block and the size. Unused blocks are erased (0xFF).</item>
/// </list>
/// </summary>
public static class LittleFsImage
{
    public const int DefaultBlockSize = 4096;
    public const uint DiskVersion = 0x00020000;

    private const uint TypeRegularName = 0x001;
    private const uint TypeSuperblock = 0x0FF;
    private const uint TypeInlineStruct = 0x201;
    private const uint TypeCtzStruct = 0x202;
    private const uint TypeCrc = 0x500;
    private const uint NoId = 0x3FF;
    private const uint BlockNull = 0xFFFFFFFF;

    /// <summary>Builds an image of <paramref name="blockCount"/> blocks with the given files in the root directory.</summary>
    public static byte[] Build(int blockSize, int blockCount, IEnumerable<(string Name, byte[] Content)> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (blockSize < 128 || blockSize % 4 != 0)
        {
            throw Invalid(ErrorIds.LittleFsInvalidBlockSize, $"The block size {blockSize} is not a multiple of 4 of at least 128 bytes.");
        }

        if (blockCount < 2)
        {
            throw Invalid(ErrorIds.LittleFsPartitionTooSmall, $"A littlefs partition needs at least 2 blocks; this one has {blockCount}.");
        }

        var sorted = files.ToList();
        sorted.Sort((a, b) => CompareNames(a.Name, b.Name));
        for (var i = 0; i < sorted.Count; i++)
        {
            var length = Encoding.UTF8.GetByteCount(sorted[i].Name);
            if (length == 0 || length > 255 || sorted[i].Name.Contains('/', StringComparison.Ordinal))
            {
                throw Invalid(ErrorIds.LittleFsInvalidFileName, $"'{sorted[i].Name}' is not a valid file name for the root directory.");
            }

            if (i > 0 && sorted[i].Name == sorted[i - 1].Name)
            {
                throw Invalid(ErrorIds.LittleFsDuplicateFileName, $"'{sorted[i].Name}' is given twice.");
            }
        }

        var image = new byte[(long)blockSize * blockCount];
        Array.Fill(image, (byte)0xFF);

        // File data first, so the root commit can name each file's last block.
        var nextBlock = 2;
        var structs = new List<(uint Head, uint Size)>();
        foreach (var (name, content) in sorted)
        {
            if (content.Length == 0)
            {
                structs.Add((BlockNull, 0));
                continue;
            }

            var written = 0;
            var blocks = new List<int>();
            while (written < content.Length)
            {
                if (nextBlock >= blockCount)
                {
                    throw Invalid(ErrorIds.LittleFsPartitionTooSmall, $"The files do not fit in {blockCount} blocks of {blockSize} bytes.");
                }

                var index = blocks.Count;
                var block = nextBlock++;
                var offset = (long)block * blockSize;
                var header = 0;
                if (index > 0)
                {
                    var pointers = System.Numerics.BitOperations.TrailingZeroCount(index) + 1;
                    for (var p = 0; p < pointers; p++)
                    {
                        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan((int)offset + (4 * p)), (uint)blocks[index - (1 << p)]);
                    }

                    header = 4 * pointers;
                }

                var chunk = Math.Min(blockSize - header, content.Length - written);
                content.AsSpan(written, chunk).CopyTo(image.AsSpan((int)offset + header));
                written += chunk;
                blocks.Add(block);
            }

            structs.Add(((uint)blocks[^1], (uint)content.Length));
        }

        var commit = new MetadataWriter(image, 0, blockSize);
        commit.Revision(1);
        commit.Tag(TypeSuperblock, 0, "littlefs"u8);
        var superblock = new byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(superblock, DiskVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(superblock.AsSpan(4), (uint)blockSize);
        BinaryPrimitives.WriteUInt32LittleEndian(superblock.AsSpan(8), (uint)blockCount);
        // name_max, file_max, attr_max = 0: the mounting device keeps its configured limits.
        commit.Tag(TypeInlineStruct, 0, superblock);
        var ctz = new byte[8];
        for (var i = 0; i < sorted.Count; i++)
        {
            var id = (uint)(i + 1);
            commit.Tag(TypeRegularName, id, Encoding.UTF8.GetBytes(sorted[i].Name));
            if (structs[i].Head == BlockNull)
            {
                commit.Tag(TypeInlineStruct, id, []);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(ctz, structs[i].Head);
                BinaryPrimitives.WriteUInt32LittleEndian(ctz.AsSpan(4), structs[i].Size);
                commit.Tag(TypeCtzStruct, id, ctz);
            }
        }

        commit.WriteCrc();
        return image;
    }

    /// <summary>
    /// Reads the files of the root directory of a littlefs image: one written by <see cref="Build"/>, or the same partition
    /// after the device has written to it (later commits, created and deleted files). A root directory that has grown past
    /// one metadata pair is not followed.
    /// </summary>
    public static IReadOnlyDictionary<string, byte[]> ReadRootFiles(ReadOnlySpan<byte> image, int blockSize = DefaultBlockSize)
    {
        if (blockSize <= 0 || image.Length < 2 * blockSize || image.Length % blockSize != 0)
        {
            throw Bad("The data is not a whole number of littlefs blocks.");
        }

        var block0 = Fetch(image.Slice(0, blockSize));
        var block1 = Fetch(image.Slice(blockSize, blockSize));
        var ids = (block0, block1) switch
        {
            (null, null) => throw Bad("Neither block of the root metadata pair holds a valid commit."),
            (not null, null) => block0.Value.Ids,
            (null, not null) => block1.Value.Ids,
            _ => (int)(block1!.Value.Revision - block0!.Value.Revision) > 0 ? block1.Value.Ids : block0.Value.Ids,
        };

        if (ids.Count == 0 || !ids[0].TryGetValue(TypeSuperblock, out var magic) || !magic.AsSpan().SequenceEqual("littlefs"u8))
        {
            throw Bad("The root metadata pair has no littlefs superblock.");
        }

        var result = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var entry in ids)
        {
            if (!entry.TryGetValue(TypeRegularName, out var nameBytes))
            {
                continue; // superblock, directories, deleted slots
            }

            var name = Encoding.UTF8.GetString(nameBytes);
            if (entry.TryGetValue(TypeCtzStruct, out var ctz) && ctz.Length == 8)
            {
                result[name] = ReadCtz(image, blockSize, BinaryPrimitives.ReadUInt32LittleEndian(ctz), BinaryPrimitives.ReadUInt32LittleEndian(ctz.AsSpan(4)));
            }
            else if (entry.TryGetValue(TypeInlineStruct, out var inline))
            {
                result[name] = inline;
            }
        }

        return result;
    }

    // One metadata block: the entries by id after replaying its valid commits, or null if it has none.
    private static (uint Revision, List<Dictionary<uint, byte[]>> Ids)? Fetch(ReadOnlySpan<byte> block)
    {
        var revision = BinaryPrimitives.ReadUInt32LittleEndian(block);
        var ids = new List<Dictionary<uint, byte[]>>();
        var pending = new List<(uint Type, uint Id, byte[]? Data)>();
        var previous = 0xFFFFFFFFu;
        var crc = new LfsCrc();
        crc.Append(block[..4]);
        var offset = 4;
        var anyCommit = false;
        while (offset + 4 <= block.Length)
        {
            var tag = BinaryPrimitives.ReadUInt32BigEndian(block[offset..]) ^ previous;
            if ((tag & 0x80000000) != 0)
            {
                break; // erased or unfinished
            }

            var type = (tag >> 20) & 0x7FF;
            var id = (tag >> 10) & 0x3FF;
            var length = tag & 0x3FF;
            var size = length == 0x3FF ? 0 : (int)length;
            if (offset + 4 + size > block.Length)
            {
                break;
            }

            if ((type & 0x700) == TypeCrc)
            {
                crc.Append(block.Slice(offset, 4));
                if (type == 0x5FF)
                {
                    // forward CRC of the next commit's erased bytes: part of this commit, not its end
                    crc.Append(block.Slice(offset + 4, size));
                    previous = tag;
                    offset += 4 + size;
                    continue;
                }

                if (size < 4 || BinaryPrimitives.ReadUInt32LittleEndian(block[(offset + 4)..]) != crc.Value)
                {
                    break; // torn commit
                }

                Replay(ids, pending);
                pending.Clear();
                anyCommit = true;
                previous = tag ^ ((type & 1) << 31);
                offset += 4 + size;
                crc.Reset();
                continue;
            }

            if (type == 0x601)
            {
                throw new IoTHubMqttException(ErrorIds.LittleFsUnsupported,
                    "The littlefs root directory continues in another metadata pair, which this reader does not follow.",
                    "Read the file on the device instead.", "LittleFs");
            }

            crc.Append(block.Slice(offset, 4 + size));
            pending.Add((type, id, length == 0x3FF ? null : block.Slice(offset + 4, size).ToArray()));
            previous = tag;
            offset += 4 + size;
        }

        return anyCommit ? (revision, ids) : null;
    }

    // Applies one commit's tags: create/delete shift the ids after them, other tags set (or, deleted, remove) an entry.
    private static void Replay(List<Dictionary<uint, byte[]>> ids, List<(uint Type, uint Id, byte[]? Data)> tags)
    {
        foreach (var (type, id, data) in tags)
        {
            if ((type & 0x700) == 0x600 || (type & 0x700) == 0x700 || id == NoId)
            {
                continue; // tails and global state do not name files
            }

            if (type == 0x401)
            {
                ids.Insert((int)Math.Min(id, (uint)ids.Count), new Dictionary<uint, byte[]>());
                continue;
            }

            if (type == 0x4FF)
            {
                if (id < ids.Count)
                {
                    ids.RemoveAt((int)id);
                }

                continue;
            }

            while (ids.Count <= id)
            {
                ids.Add(new Dictionary<uint, byte[]>());
            }

            var key = type;
            if ((type & 0x700) == 0x200)
            {
                ids[(int)id].Remove(TypeInlineStruct);
                ids[(int)id].Remove(TypeCtzStruct);
                ids[(int)id].Remove(0x200);
            }

            if (data is null)
            {
                ids[(int)id].Remove(key);
            }
            else
            {
                ids[(int)id][key] = data;
            }
        }
    }

    private static byte[] ReadCtz(ReadOnlySpan<byte> image, int blockSize, uint head, uint size)
    {
        var blockCount = image.Length / blockSize;
        // Walk back from the last block to the first, then read forward.
        var chain = new List<uint>();
        var index = IndexOfLastBlock(blockSize, size);
        var block = head;
        for (var k = index; k >= 0; k--)
        {
            if (block >= blockCount)
            {
                throw Bad("A file points outside the image.");
            }

            chain.Add(block);
            if (k > 0)
            {
                block = BinaryPrimitives.ReadUInt32LittleEndian(image[(int)(block * blockSize)..]);
            }
        }

        chain.Reverse();
        var result = new byte[size];
        var written = 0;
        for (var k = 0; k < chain.Count && written < size; k++)
        {
            var header = k == 0 ? 0 : 4 * (System.Numerics.BitOperations.TrailingZeroCount(k) + 1);
            var chunk = (int)Math.Min(blockSize - header, size - written);
            image.Slice((int)(chain[k] * blockSize) + header, chunk).CopyTo(result.AsSpan(written));
            written += chunk;
        }

        return result;
    }

    private static int IndexOfLastBlock(int blockSize, uint size)
    {
        var index = 0;
        long capacity = blockSize;
        while (capacity < size)
        {
            index++;
            capacity += blockSize - (4 * (System.Numerics.BitOperations.TrailingZeroCount(index) + 1));
        }

        return index;
    }

    private static int CompareNames(string a, string b)
    {
        var x = Encoding.UTF8.GetBytes(a);
        var y = Encoding.UTF8.GetBytes(b);
        var common = x.AsSpan(0, Math.Min(x.Length, y.Length)).SequenceCompareTo(y.AsSpan(0, Math.Min(x.Length, y.Length)));
        return common != 0 ? common : x.Length.CompareTo(y.Length);
    }

    private static IoTHubMqttException Invalid(string errorId, string message) =>
        new(errorId, message, "Check the partition table's littlefs partition size.", "LittleFs");

    private static IoTHubMqttException Bad(string message) =>
        new(ErrorIds.LittleFsCorrupt, message, "Read the partition again, or write a new configuration.", "LittleFs");

    /// <summary>Appends tags to one metadata block, XOR-chaining them and keeping the running CRC.</summary>
    private sealed class MetadataWriter
    {
        private readonly Memory<byte> memory;
        private int offset;
        private uint previous;
        private readonly LfsCrc crc = new();

        public MetadataWriter(byte[] image, int blockIndex, int blockSize)
        {
            memory = image.AsMemory(blockIndex * blockSize, blockSize);
            offset = 0;
            previous = 0xFFFFFFFF;
        }

        public void Revision(uint revision)
        {
            var block = memory.Span;
            BinaryPrimitives.WriteUInt32LittleEndian(block, revision);
            crc.Append(block[..4]);
            offset = 4;
        }

        public void Tag(uint type, uint id, ReadOnlySpan<byte> data)
        {
            var block = memory.Span;
            if (offset + 4 + data.Length + 8 > block.Length || data.Length >= 0x3FF)
            {
                throw Invalid(ErrorIds.LittleFsTooManyFiles, "The root directory entries do not fit one metadata block.");
            }

            var tag = (type << 20) | (id << 10) | (uint)data.Length;
            BinaryPrimitives.WriteUInt32BigEndian(block[offset..], tag ^ previous);
            data.CopyTo(block[(offset + 4)..]);
            crc.Append(block.Slice(offset, 4 + data.Length));
            previous = tag;
            offset += 4 + data.Length;
        }

        // The commit's CRC tag: CRC of everything so far including this tag, padded to a multiple of 4 bytes.
        public void WriteCrc()
        {
            var block = memory.Span;
            var end = Math.Min((offset + 8 + 3) & ~3, block.Length);
            var tag = (TypeCrc << 20) | (NoId << 10) | (uint)(end - offset - 4);
            BinaryPrimitives.WriteUInt32BigEndian(block[offset..], tag ^ previous);
            crc.Append(block.Slice(offset, 4));
            BinaryPrimitives.WriteUInt32LittleEndian(block[(offset + 4)..], crc.Value);
            offset = end;
        }
    }
}

/// <summary>littlefs's running CRC-32 (lfs_crc seeded with 0xFFFFFFFF): the zlib/Ethernet CRC-32 without its final inversion.</summary>
internal sealed class LfsCrc
{
    private readonly System.IO.Hashing.Crc32 hash = new();

    public uint Value => ~hash.GetCurrentHashAsUInt32();

    public void Append(ReadOnlySpan<byte> data) => hash.Append(data);

    public void Reset() => hash.Reset();
}
