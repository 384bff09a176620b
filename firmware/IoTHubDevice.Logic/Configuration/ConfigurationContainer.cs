using System.Text;

namespace IoTHubDevice.Logic.Configuration
{
    /// <summary>
    /// The device configuration container (firmware/docs/device-configuration.md): a 16-byte little-endian header
    /// <c>"IHMC" | u16 format version (1) | u16 flags (0) | u32 body length | u32 CRC-32 of the body</c>, then the UTF-8 JSON body.
    /// Bytes after the body are ignored, so the same blob can sit in a file or at the start of an erased (0xFF) flash region.
    /// </summary>
    public static class ConfigurationContainer
    {
        public const int HeaderSize = 16;
        public const ushort FormatVersion = 1;

        /// <summary>Largest body accepted: a CA bundle of a few certificates plus credentials.</summary>
        public const int MaxBodyLength = 64 * 1024;

        /// <summary>Checks the header and CRC and returns the JSON body.</summary>
        public static string ReadBody(byte[] blob)
        {
            if (blob == null || blob.Length == 0)
            {
                throw new DeviceLogicException("ConfigurationMissing", "No device configuration was found.");
            }

            if (blob.Length < HeaderSize)
            {
                throw new DeviceLogicException("ConfigurationTruncated", "The device configuration is shorter than its 16-byte header.");
            }

            if (blob[0] != (byte)'I' || blob[1] != (byte)'H' || blob[2] != (byte)'M' || blob[3] != (byte)'C')
            {
                if (blob[0] == 0xFF && blob[1] == 0xFF && blob[2] == 0xFF && blob[3] == 0xFF)
                {
                    throw new DeviceLogicException("ConfigurationMissing", "The configuration area is erased: no device configuration was written.");
                }

                throw new DeviceLogicException("ConfigurationBadMagic", "The device configuration does not start with the 'IHMC' marker.");
            }

            var version = ReadUInt16(blob, 4);
            if (version != FormatVersion)
            {
                throw new DeviceLogicException("ConfigurationUnsupportedVersion",
                    "The device configuration has format version " + version.ToString() + "; this firmware reads version " + FormatVersion.ToString() + ".");
            }

            var length = ReadUInt32(blob, 8);
            if (length == 0 || length > MaxBodyLength)
            {
                throw new DeviceLogicException("ConfigurationInvalidLength", "The device configuration body length " + length.ToString() + " is out of range.");
            }

            if (HeaderSize + (long)length > blob.Length)
            {
                throw new DeviceLogicException("ConfigurationTruncated",
                    "The device configuration says its body has " + length.ToString() + " bytes but only " + (blob.Length - HeaderSize).ToString() + " follow the header.");
            }

            var expected = ReadUInt32(blob, 12);
            var actual = Crc32.Compute(blob, HeaderSize, (int)length);
            if (expected != actual)
            {
                throw new DeviceLogicException("ConfigurationCrcMismatch", "The device configuration is corrupt (CRC-32 mismatch).");
            }

            return new string(Encoding.UTF8.GetChars(blob, HeaderSize, (int)length));
        }

        /// <summary>Wraps a JSON body in the container.</summary>
        public static byte[] Write(string json)
        {
            var body = Encoding.UTF8.GetBytes(json);
            if (body.Length == 0 || body.Length > MaxBodyLength)
            {
                throw new DeviceLogicException("ConfigurationInvalidLength", "The device configuration body must be 1 to " + MaxBodyLength.ToString() + " bytes.");
            }

            var blob = new byte[HeaderSize + body.Length];
            blob[0] = (byte)'I';
            blob[1] = (byte)'H';
            blob[2] = (byte)'M';
            blob[3] = (byte)'C';
            WriteUInt16(blob, 4, FormatVersion);
            WriteUInt16(blob, 6, 0);
            WriteUInt32(blob, 8, (uint)body.Length);
            WriteUInt32(blob, 12, Crc32.Compute(body, 0, body.Length));
            for (var i = 0; i < body.Length; i++)
            {
                blob[HeaderSize + i] = body[i];
            }

            return blob;
        }

        private static ushort ReadUInt16(byte[] b, int offset)
        {
            return (ushort)(b[offset] | (b[offset + 1] << 8));
        }

        private static uint ReadUInt32(byte[] b, int offset)
        {
            return (uint)(b[offset] | (b[offset + 1] << 8) | (b[offset + 2] << 16) | (b[offset + 3] << 24));
        }

        private static void WriteUInt16(byte[] b, int offset, ushort value)
        {
            b[offset] = (byte)value;
            b[offset + 1] = (byte)(value >> 8);
        }

        private static void WriteUInt32(byte[] b, int offset, uint value)
        {
            b[offset] = (byte)value;
            b[offset + 1] = (byte)(value >> 8);
            b[offset + 2] = (byte)(value >> 16);
            b[offset + 3] = (byte)(value >> 24);
        }
    }
}
