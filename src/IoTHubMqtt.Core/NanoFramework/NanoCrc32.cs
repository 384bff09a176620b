namespace IoTHubMqtt.Core.NanoFramework;

/// <summary>
/// The CRC-32 nanoFramework uses for assembly headers and contents (SUPPORT_ComputeCRC): polynomial 0x04C11DB7, MSB first,
/// initial value 0, no final XOR.
/// </summary>
public static class NanoCrc32
{
    private static readonly uint[] Table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data, uint crc = 0)
    {
        foreach (var b in data)
        {
            crc = Table[((crc >> 24) ^ b) & 0xFF] ^ (crc << 8);
        }

        return crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i << 24;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 0x80000000) != 0 ? (c << 1) ^ 0x04C11DB7u : c << 1;
            }

            table[i] = c;
        }

        return table;
    }
}
