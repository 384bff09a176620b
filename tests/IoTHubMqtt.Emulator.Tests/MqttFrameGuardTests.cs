using IoTHubMqtt.Emulator.Transport;

namespace IoTHubMqtt.Emulator.Tests;

public sealed class MqttFrameGuardTests
{
    [Fact]
    public void Inspect_PacketsSplitAcrossReadsAtEveryByte_Pass()
    {
        // PINGREQ, a PUBLISH with a 200-byte body (2-byte length), DISCONNECT
        var stream = new List<byte> { 0xC0, 0x00, 0x30, 0xC8, 0x01 };
        stream.AddRange(new byte[200]);
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
        guard.Inspect([0x30, 0x02, 0x00, 0x00]);
        Assert.Throws<IOException>(() => guard.Inspect([0x30, 0x0B]));
    }
}
