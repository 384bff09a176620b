namespace IoTHubDevice.Logic.Security
{
    /// <summary>HMAC-SHA256, provided by the platform (System.Security.Cryptography on .NET and on nanoFramework).</summary>
    public interface IHmacSha256
    {
        byte[] ComputeHash(byte[] key, byte[] data);
    }
}
