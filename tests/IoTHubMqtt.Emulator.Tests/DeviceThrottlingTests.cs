using IoTHubMqtt.Testing;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>The opt-in device throttling fault, seen by a raw MQTT device: what IoT Hub does to a throttled MQTT 3.1.1 device.</summary>
public sealed class DeviceThrottlingTests
{
    [Fact]
    public async Task TelemetryOverTheRate_IsNotAcknowledged_AndTheConnectionIsClosed()
    {
        await using var hub = EmulatorFixture.Start(o => o.DeviceOperationsPerSecond = 3);
        await using var device = await hub.ConnectNewDeviceAsync("throttled");
        var topic = $"devices/{device.DeviceId}/messages/events/";

        // The bucket holds 3; whatever the machine's speed, a burst of 20 goes over it.
        var acknowledged = 0;
        Exception? refused = null;
        for (var i = 0; i < 20 && refused is null; i++)
        {
            try
            {
                var result = await device.PublishAsync(topic, "m" + i, cancellationToken: TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
                Assert.True(result.IsSuccess);
                acknowledged++;
            }
            catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
            {
                refused = ex;
            }
        }

        Assert.NotNull(refused);
        Assert.InRange(acknowledged, 3, 19);
        await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Contains(hub.Log, line => line.Contains("throttled", StringComparison.Ordinal));
        var stored = await hub.Service.SendAsync(HttpMethod.Get, $"/$emulator/messages/events?deviceId={Uri.EscapeDataString(device.DeviceId)}&from=0&max=100&timeout=1");
        Assert.Equal(acknowledged, stored.Json!["messages"]!.AsArray().Count);
    }

    [Fact]
    public async Task TwinRequestsOverTheRate_AreAnswered429_UntilTheRateAllowsThemAgain()
    {
        await using var hub = EmulatorFixture.Start(o => o.DeviceOperationsPerSecond = 1);
        await using var device = await hub.ConnectNewDeviceAsync("throttled-twin");
        await device.SubscribeAsync("$iothub/twin/res/#", MqttQualityOfServiceLevel.AtMostOnce, TestContext.Current.CancellationToken);

        // Back to back: the second comes well within the second the first used up.
        await device.PublishAsync("$iothub/twin/GET/?$rid=1", "", MqttQualityOfServiceLevel.AtMostOnce, cancellationToken: TestContext.Current.CancellationToken);
        await device.PublishAsync("$iothub/twin/GET/?$rid=2", "", MqttQualityOfServiceLevel.AtMostOnce, cancellationToken: TestContext.Current.CancellationToken);
        var answers = new[] { await device.ReceiveAsync("$iothub/twin/res/"), await device.ReceiveAsync("$iothub/twin/res/") };
        var first = answers.Single(a => a.Topic.EndsWith("$rid=1", StringComparison.Ordinal));
        var second = answers.Single(a => a.Topic.EndsWith("$rid=2", StringComparison.Ordinal));
        await Task.Delay(1200, TestContext.Current.CancellationToken);
        await device.PublishAsync("$iothub/twin/GET/?$rid=3", "", MqttQualityOfServiceLevel.AtMostOnce, cancellationToken: TestContext.Current.CancellationToken);
        var third = await device.ReceiveAsync("$iothub/twin/res/");

        Assert.Equal(200, MqttTestDevice.StatusOf(first, "$iothub/twin/res/"));
        Assert.Equal("$iothub/twin/res/429/?$rid=2", second.Topic);
        Assert.Contains("ThrottlingException", MqttTestDevice.Text(second), StringComparison.Ordinal);
        Assert.Equal(200, MqttTestDevice.StatusOf(third, "$iothub/twin/res/"));
        Assert.True(device.Client.IsConnected, "a throttled twin request must not close the connection");
    }
}
