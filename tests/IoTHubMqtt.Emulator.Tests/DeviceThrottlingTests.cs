using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// The opt-in device throttling fault, seen by a raw MQTT device: what IoT Hub does to a throttled MQTT 3.1.1 device.
/// The hub runs on a fake clock, so the rate window is exactly what the test says it is, whatever the machine's speed.
/// </summary>
public sealed class DeviceThrottlingTests
{
    [Fact]
    public async Task TelemetryOverTheRate_IsNotAcknowledged_AndTheConnectionIsClosed_UntilTheWindowPasses()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var hub = EmulatorFixture.Start(o => { o.DeviceOperationsPerSecond = 3; o.TimeProvider = clock; });
        var (id, key) = hub.CreateDevice("throttled");
        await using var device = await MqttTestDevice.ConnectAsync(hub.Emulator, id, key);
        var topic = $"devices/{id}/messages/events/";

        // The clock stands still: the bucket of 3 is all this second allows.
        for (var i = 0; i < 3; i++)
        {
            Assert.True((await device.PublishAsync(topic, "m" + i, cancellationToken: TestContext.Current.CancellationToken)).IsSuccess);
        }

        await Assert.ThrowsAnyAsync<Exception>(() => device.PublishAsync(topic, "over", cancellationToken: TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
        await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Contains(hub.Log, line => line.Contains("throttled", StringComparison.Ordinal));
        var stored = await hub.Service.SendAsync(HttpMethod.Get, $"/$emulator/messages/events?deviceId={Uri.EscapeDataString(id)}&from=0&max=100");
        Assert.Equal(["m0", "m1", "m2"], stored.Json!["messages"]!.AsArray().Select(m => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(m!["body"]!.GetValue<string>()))));

        // A second later the device may send again.
        clock.Advance(TimeSpan.FromSeconds(1));
        await using var again = await MqttTestDevice.ConnectAsync(hub.Emulator, id, key);
        Assert.True((await again.PublishAsync(topic, "after", cancellationToken: TestContext.Current.CancellationToken)).IsSuccess);
    }

    [Fact]
    public async Task TwinRequestsOverTheRate_AreAnswered429_UntilTheRateAllowsThemAgain()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var hub = EmulatorFixture.Start(o => { o.DeviceOperationsPerSecond = 1; o.TimeProvider = clock; });
        await using var device = await hub.ConnectNewDeviceAsync("throttled-twin");
        await device.SubscribeAsync("$iothub/twin/res/#", MqttQualityOfServiceLevel.AtMostOnce, TestContext.Current.CancellationToken);

        await device.PublishAsync("$iothub/twin/GET/?$rid=1", "", MqttQualityOfServiceLevel.AtMostOnce, cancellationToken: TestContext.Current.CancellationToken);
        var first = await device.ReceiveAsync("$iothub/twin/res/");
        await device.PublishAsync("$iothub/twin/GET/?$rid=2", "", MqttQualityOfServiceLevel.AtMostOnce, cancellationToken: TestContext.Current.CancellationToken);
        var second = await device.ReceiveAsync("$iothub/twin/res/");
        clock.Advance(TimeSpan.FromSeconds(1));
        await device.PublishAsync("$iothub/twin/GET/?$rid=3", "", MqttQualityOfServiceLevel.AtMostOnce, cancellationToken: TestContext.Current.CancellationToken);
        var third = await device.ReceiveAsync("$iothub/twin/res/");

        Assert.Equal("$iothub/twin/res/200/?$rid=1", first.Topic);
        Assert.Equal("$iothub/twin/res/429/?$rid=2", second.Topic);
        Assert.Contains("ThrottlingException", MqttTestDevice.Text(second), StringComparison.Ordinal);
        Assert.Equal("$iothub/twin/res/200/?$rid=3", third.Topic);
        Assert.True(device.Client.IsConnected, "a throttled twin request must not close the connection");
    }
}
