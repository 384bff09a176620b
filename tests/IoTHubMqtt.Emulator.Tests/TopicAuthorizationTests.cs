using IoTHubMqtt.Testing;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Tests;

public sealed class TopicAuthorizationTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    [Fact]
    public async Task Publish_ToAnotherDevicesTelemetryTopic_Disconnects()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        var (other, _) = fixture.CreateDevice();
        await IgnoreFailure(device.PublishAsync($"devices/{other}/messages/events/", "{}", MqttQualityOfServiceLevel.AtMostOnce));
        await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(device.Client.IsConnected);
    }

    [Fact]
    public async Task Publish_ToUnknownTopic_Disconnects()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        await IgnoreFailure(device.PublishAsync("some/random/topic", "x", MqttQualityOfServiceLevel.AtMostOnce));
        await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Subscribe_ToAnotherDevicesCloudToDeviceTopic_Disconnects()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        var (other, _) = fixture.CreateDevice();
        await IgnoreFailure(device.SubscribeAsync($"devices/{other}/messages/devicebound/#"));
        await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Subscribe_ToTopicsNoDeviceHas_Disconnects()
    {
        // ('#' is the device's C2D subscription, as on the hub: SdkDialectTests.)
        await using var device = await fixture.ConnectNewDeviceAsync();
        await IgnoreFailure(device.SubscribeAsync("sensors/#"));
        await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Publish_WithQos2_Disconnects()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        await IgnoreFailure(device.PublishAsync($"devices/{device.DeviceId}/messages/events/", "{}", MqttQualityOfServiceLevel.ExactlyOnce));
        await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Publish_TelemetryOver256KB_Disconnects()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        var before = fixture.Emulator.Hub.Telemetry.NextSequenceNumber;
        await IgnoreFailure(device.PublishAsync($"devices/{device.DeviceId}/messages/events/", new byte[(256 * 1024) + 1], MqttQualityOfServiceLevel.AtLeastOnce));
        await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(10));
        var stored = await fixture.Emulator.Hub.Telemetry.ReadAsync(before, 10, device.DeviceId, TimeSpan.Zero);
        Assert.Empty(stored);
    }

    [Fact]
    public async Task Publish_Telemetry256KB_IsAccepted()
    {
        await using var device = await fixture.ConnectNewDeviceAsync();
        var result = await device.PublishAsync($"devices/{device.DeviceId}/messages/events/", new byte[256 * 1024], MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.True(result.IsSuccess);
        Assert.True(device.Client.IsConnected);
    }

    private static async Task IgnoreFailure(Task operation)
    {
        try
        {
            await operation.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or TimeoutException or MQTTnet.Exceptions.MqttClientNotConnectedException)
        {
            // the hub closes the connection instead of answering
        }
    }
}
