using IoTHubMqtt.Emulator.Transport;

namespace IoTHubMqtt.Emulator.Tests;

public sealed class MqttFrameGuardTests
{
    [Fact]
    public void Inspect_PacketsSplitAcrossReadsAtEveryByte_Pass()
    {
        // PINGREQ, a PUBLISH with a 200-byte body (2-byte length: topic "a/b", 195 payload bytes that are not UTF-8), DISCONNECT
        var stream = new List<byte> { 0xC0, 0x00, 0x30, 0xC8, 0x01, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'b' };
        stream.AddRange(Enumerable.Repeat((byte)0xFF, 195));
        stream.AddRange([0xE0, 0x00]);
        var guard = new MqttFrameGuard(1000);
        foreach (var b in stream)
        {
            guard.Inspect([b]);
        }

        new MqttFrameGuard(1000).Inspect(stream.ToArray());
    }

    [Fact]
    public void Inspect_DeclaredLengthOverTheLimit_Throws()
    {
        var guard = new MqttFrameGuard(1000);
        Assert.Throws<IOException>(() => guard.Inspect([0x30, 0xE9, 0x07])); // 1001
    }

    [Fact]
    public void Inspect_LengthAtTheLimit_Passes()
    {
        var guard = new MqttFrameGuard(1000);
        guard.Inspect([0x30, 0xE8, 0x07]); // 1000
    }

    [Fact]
    public void Inspect_FiveLengthBytes_Throws()
    {
        var guard = new MqttFrameGuard(int.MaxValue);
        Assert.Throws<IOException>(() => guard.Inspect([0x10, 0x80, 0x80, 0x80, 0x80, 0x01]));
    }

    [Fact]
    public void Inspect_SecondPacketOversized_ThrowsAfterTheFirstPasses()
    {
        var guard = new MqttFrameGuard(10);
        guard.Inspect([0x40, 0x02, 0x00, 0x01]); // PUBACK
        Assert.Throws<IOException>(() => guard.Inspect([0x30, 0x0B]));
    }

    [Fact]
    public void Inspect_PublishTopicWithAWildcard_SplitAtEveryByte_Throws_AndNamesTheClient()
    {
        // CONNECT (client id "dev-1") then PUBLISH "a/+" QoS 0 with payload "x"
        byte[] connect = [0x10, 0x13, 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x05, (byte)'d', (byte)'e', (byte)'v', (byte)'-', (byte)'1', 0x00, 0x00];
        byte[] publish = [0x30, 0x06, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'+', (byte)'x'];
        var messages = new List<string>();
        var guard = new MqttFrameGuard(1000, messages.Add);
        connect[1] = (byte)(connect.Length - 2);
        foreach (var b in connect)
        {
            guard.Inspect([b]);
        }

        var error = Assert.Throws<IOException>(() =>
        {
            foreach (var b in publish)
            {
                guard.Inspect([b]);
            }
        });
        Assert.Contains("'dev-1'", error.Message, StringComparison.Ordinal);
        Assert.Contains("§4.7.1", Assert.Single(messages), StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_SubscribeFilterWithMisplacedWildcard_Throws()
    {
        byte[] subscribe = [0x82, 0x08, 0x00, 0x01, 0x00, 0x03, (byte)'a', (byte)'#', (byte)'b', 0x01];
        subscribe[1] = (byte)(subscribe.Length - 2);
        Assert.Throws<IOException>(() => new MqttFrameGuard(1000).Inspect(subscribe));
        byte[] valid = [0x82, 0x08, 0x00, 0x01, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'#', 0x01];
        valid[1] = (byte)(valid.Length - 2);
        new MqttFrameGuard(1000).Inspect(valid);
    }
}
