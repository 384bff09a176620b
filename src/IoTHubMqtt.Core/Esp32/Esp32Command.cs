using System.Buffers.Binary;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>One request: <c>00 op u16-size u32-checksum data</c>, little-endian. Pure encoding, no I/O.</summary>
public sealed record Esp32Command(Esp32Opcode Opcode, byte[] Data, uint Checksum = 0)
{
    public const byte ChecksumSeed = 0xEF;

    /// <summary>The request packet (before SLIP framing).</summary>
    public byte[] Encode()
    {
        var packet = new byte[8 + Data.Length];
        packet[0] = 0x00;
        packet[1] = (byte)Opcode;
        BinaryPrimitives.WriteUInt16LittleEndian(packet.AsSpan(2), checked((ushort)Data.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(packet.AsSpan(4), Checksum);
        Data.CopyTo(packet, 8);
        return packet;
    }

    /// <summary>Decodes a request packet (the simulator side); null when it is not a well-formed request.</summary>
    public static Esp32Command? TryDecode(ReadOnlySpan<byte> packet)
    {
        if (packet.Length < 8 || packet[0] != 0x00)
        {
            return null;
        }

        var size = BinaryPrimitives.ReadUInt16LittleEndian(packet[2..]);
        if (packet.Length - 8 != size)
        {
            return null;
        }

        return new Esp32Command((Esp32Opcode)packet[1], packet[8..].ToArray(), BinaryPrimitives.ReadUInt32LittleEndian(packet[4..]));
    }

    /// <summary>0xEF XOR every byte: the checksum of data commands.</summary>
    public static uint ComputeChecksum(ReadOnlySpan<byte> data)
    {
        byte state = ChecksumSeed;
        foreach (var b in data)
        {
            state ^= b;
        }

        return state;
    }

    public static Esp32Command Sync()
    {
        var data = new byte[36];
        data[0] = 0x07;
        data[1] = 0x07;
        data[2] = 0x12;
        data[3] = 0x20;
        data.AsSpan(4).Fill(0x55);
        return new Esp32Command(Esp32Opcode.Sync, data);
    }

    public static Esp32Command ReadReg(uint address) => new(Esp32Opcode.ReadReg, Words(address));

    public static Esp32Command WriteReg(uint address, uint value, uint mask = 0xFFFFFFFF, uint delayMicroseconds = 0) =>
        new(Esp32Opcode.WriteReg, Words(address, value, mask, delayMicroseconds));

    public static Esp32Command MemBegin(uint size, uint blocks, uint blockSize, uint address) =>
        new(Esp32Opcode.MemBegin, Words(size, blocks, blockSize, address));

    public static Esp32Command MemData(ReadOnlySpan<byte> block, uint sequence) => DataCommand(Esp32Opcode.MemData, block, sequence);

    /// <summary>MEM_END: with an entry point the loaded program runs.</summary>
    public static Esp32Command MemEnd(uint entry) => new(Esp32Opcode.MemEnd, Words(entry == 0 ? 1u : 0u, entry));

    public static Esp32Command FlashBegin(uint eraseSize, uint blocks, uint blockSize, uint offset, bool encryptedWord) =>
        new(Esp32Opcode.FlashBegin, encryptedWord ? Words(eraseSize, blocks, blockSize, offset, 0) : Words(eraseSize, blocks, blockSize, offset));

    public static Esp32Command FlashData(ReadOnlySpan<byte> block, uint sequence) => DataCommand(Esp32Opcode.FlashData, block, sequence);

    public static Esp32Command FlashDeflBegin(uint size, uint blocks, uint blockSize, uint offset, bool encryptedWord) =>
        new(Esp32Opcode.FlashDeflBegin, encryptedWord ? Words(size, blocks, blockSize, offset, 0) : Words(size, blocks, blockSize, offset));

    public static Esp32Command FlashDeflData(ReadOnlySpan<byte> block, uint sequence) => DataCommand(Esp32Opcode.FlashDeflData, block, sequence);

    /// <summary>FLASH_DEFL_END: <paramref name="reboot"/> false stays in the loader.</summary>
    public static Esp32Command FlashDeflEnd(bool reboot) => new(Esp32Opcode.FlashDeflEnd, Words(reboot ? 0u : 1u));

    public static Esp32Command FlashEnd(bool reboot) => new(Esp32Opcode.FlashEnd, Words(reboot ? 0u : 1u));

    public static Esp32Command SpiAttach(bool rom) => new(Esp32Opcode.SpiAttach, rom ? Words(0, 0) : Words(0));

    public static Esp32Command SpiSetParams(uint totalSize) =>
        new(Esp32Opcode.SpiSetParams, Words(0, totalSize, 0x10000, 0x1000, 0x100, 0xFFFF));

    public static Esp32Command ChangeBaudRate(uint newBaud, uint oldBaud) => new(Esp32Opcode.ChangeBaudRate, Words(newBaud, oldBaud));

    public static Esp32Command SpiFlashMd5(uint offset, uint size) => new(Esp32Opcode.SpiFlashMd5, Words(offset, size, 0, 0));

    public static Esp32Command GetSecurityInfo() => new(Esp32Opcode.GetSecurityInfo, []);

    public static Esp32Command EraseFlash() => new(Esp32Opcode.EraseFlash, []);

    public static Esp32Command EraseRegion(uint offset, uint size) => new(Esp32Opcode.EraseRegion, Words(offset, size));

    public static Esp32Command ReadFlash(uint offset, uint size, uint blockSize, uint maxInFlight) =>
        new(Esp32Opcode.ReadFlash, Words(offset, size, blockSize, maxInFlight));

    private static Esp32Command DataCommand(Esp32Opcode op, ReadOnlySpan<byte> block, uint sequence)
    {
        var data = new byte[16 + block.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(data, (uint)block.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(4), sequence);
        block.CopyTo(data.AsSpan(16));
        return new Esp32Command(op, data, ComputeChecksum(block));
    }

    internal static byte[] Words(params uint[] words)
    {
        var data = new byte[words.Length * 4];
        for (var i = 0; i < words.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(i * 4), words[i]);
        }

        return data;
    }

    /// <summary>The timeout a command needs: size-dependent for erase, MD5 and block writes.</summary>
    public static TimeSpan TimeoutFor(Esp32Opcode op, long size = 0)
    {
        static TimeSpan PerMb(double secondsPerMb, long bytes) =>
            TimeSpan.FromSeconds(Math.Max(3.0, secondsPerMb * bytes / 1_000_000.0));

        return op switch
        {
            Esp32Opcode.Sync => TimeSpan.FromMilliseconds(100),
            Esp32Opcode.EraseFlash => TimeSpan.FromSeconds(120),
            Esp32Opcode.EraseRegion or Esp32Opcode.FlashBegin or Esp32Opcode.FlashDeflBegin => PerMb(30, size),
            Esp32Opcode.SpiFlashMd5 => PerMb(8, size),
            Esp32Opcode.FlashData or Esp32Opcode.FlashDeflData => PerMb(40, size),
            Esp32Opcode.MemEnd => TimeSpan.FromMilliseconds(500),
            _ => TimeSpan.FromSeconds(3),
        };
    }
}

/// <summary>One response: <c>01 op u16-size u32-value data</c>; the status bytes sit after the expected data.</summary>
public sealed record Esp32Response(Esp32Opcode Opcode, uint Value, byte[] Data)
{
    public static Esp32Response? TryDecode(ReadOnlySpan<byte> packet)
    {
        if (packet.Length < 8 || packet[0] != 0x01)
        {
            return null;
        }

        var size = BinaryPrimitives.ReadUInt16LittleEndian(packet[2..]);
        if (packet.Length - 8 < size)
        {
            return null;
        }

        return new Esp32Response((Esp32Opcode)packet[1], BinaryPrimitives.ReadUInt32LittleEndian(packet[4..]), packet.Slice(8, size).ToArray());
    }

    public byte[] Encode()
    {
        var packet = new byte[8 + Data.Length];
        packet[0] = 0x01;
        packet[1] = (byte)Opcode;
        BinaryPrimitives.WriteUInt16LittleEndian(packet.AsSpan(2), (ushort)Data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(packet.AsSpan(4), Value);
        Data.CopyTo(packet, 8);
        return packet;
    }

    /// <summary>The status byte and error code after <paramref name="dataLength"/> bytes of response data.</summary>
    public (bool Ok, byte Error) Status(int dataLength) =>
        Data.Length < dataLength + 2 ? (false, (byte)0) : (Data[dataLength] == 0, Data[dataLength + 1]);
}
