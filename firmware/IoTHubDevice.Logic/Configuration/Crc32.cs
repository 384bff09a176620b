namespace IoTHubDevice.Logic.Configuration
{
    /// <summary>CRC-32 as in zlib/PNG/Ethernet (reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF).</summary>
    public static class Crc32
    {
        private static uint[] table;

        public static uint Compute(byte[] data, int offset, int count)
        {
            var t = Table();
            var crc = 0xFFFFFFFFu;
            for (var i = offset; i < offset + count; i++)
            {
                crc = t[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
            }

            return crc ^ 0xFFFFFFFFu;
        }

        private static uint[] Table()
        {
            if (table != null)
            {
                return table;
            }

            var t = new uint[256];
            for (uint n = 0; n < 256; n++)
            {
                var c = n;
                for (var k = 0; k < 8; k++)
                {
                    c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                }

                t[n] = c;
            }

            table = t;
            return t;
        }
    }
}
