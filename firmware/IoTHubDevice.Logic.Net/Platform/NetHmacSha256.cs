using System.Security.Cryptography;
using IoTHubDevice.Logic.Security;

namespace IoTHubDevice.Logic.Platform
{
    /// <summary>HMAC-SHA256 for .NET.</summary>
    public sealed class NetHmacSha256 : IHmacSha256
    {
        public byte[] ComputeHash(byte[] key, byte[] data)
        {
            return HMACSHA256.HashData(key, data);
        }
    }
}
