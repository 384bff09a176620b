using System.Text;

namespace IoTHubMqtt.Testing;

/// <summary>MQTT 3.1.1 packets written by hand, for tests and benchmarks that drive a broker below any client library.</summary>
public static class RawMqttPackets
{
    /// <summary>A CONNECT with user name, password and a clean session.</summary>
    public static byte[] Connect(string clientId, string userName, string password, ushort keepAliveSeconds = 0)
    {
        var body = new List<byte>();
        String(body, "MQTT");
        body.Add(4);
        body.Add(0xC2); // user name, password, clean session
        body.Add((byte)(keepAliveSeconds >> 8));
        body.Add((byte)keepAliveSeconds);
        String(body, clientId);
        String(body, userName);
        String(body, password);
        var packet = new List<byte> { 0x10 };
        var length = body.Count;
        do
        {
            var digit = (byte)(length % 128);
            length /= 128;
            packet.Add(length > 0 ? (byte)(digit | 0x80) : digit);
        }
        while (length > 0);
        packet.AddRange(body);
        return [.. packet];

        static void String(List<byte> b, string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s);
            b.Add((byte)(bytes.Length >> 8));
            b.Add((byte)bytes.Length);
            b.AddRange(bytes);
        }
    }
}
