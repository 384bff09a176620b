using System.Net;
using IoTHubMqtt.Emulator.Transport;
using IoTHubMqtt.Testing;
using MQTTnet.Formatter;
using MQTTnet.Packets;

namespace IoTHubMqtt.Emulator.Tests.Transport;

/// <summary>What a device connection keeps of its CONNECT once the hub has accepted it.</summary>
public sealed class DeviceChannelAdapterTests
{
    [Fact]
    public async Task AcceptedConnect_KeepsNeitherTheTokenNorTheUserName_AndNamesTheDeviceByTheClientIdMqttnetKeeps()
    {
        const string token = "SharedAccessSignature sr=hub%2Fdevices%2Fheld&sig=c2lnbmF0dXJl&se=4102444800";
        var violations = new List<string>();
        using var inner = new MemoryStream(RawMqttPackets.Connect("held", "hub/held/?api-version=2021-04-12", token));
        using var adapter = new DeviceChannelAdapter(
            new MqttServerStream(inner, 1024, violations.Add), new MqttPacketFormatterAdapter(new MqttBufferWriter(16, 65535)),
            new IPEndPoint(IPAddress.Loopback, 8883), new IPEndPoint(IPAddress.Loopback, 50000), null, true);

        var connect = Assert.IsType<MqttConnectPacket>(await adapter.ReceivePacketAsync(TestContext.Current.CancellationToken));
        Assert.Equal(token, System.Text.Encoding.UTF8.GetString(connect.Password)); // what the hub validates
        Assert.NotNull(connect.Username);

        // The client id MQTTnet keeps, as the hub's validation hands it over.
        var clientId = connect.ClientId;
        adapter.Accepted(clientId);

        Assert.Null(connect.Password);
        Assert.Null(connect.Username);
        Assert.Same(clientId, adapter.DeviceName);
    }
}
