using System.Security.Cryptography;
using IoTHubDevice.Logic.Security;

namespace IoTHubDevice.Platform
{
    /// <summary>HMAC-SHA256 from nanoFramework.System.Security.Cryptography (native mbedTLS on ESP32).</summary>
    internal sealed class NanoHmacSha256 : IHmacSha256
    {
        public byte[] ComputeHash(byte[] key, byte[] data)
        {
            using (var hmac = new HMACSHA256(key))
            {
                return hmac.ComputeHash(data);
            }
        }
    }
}
