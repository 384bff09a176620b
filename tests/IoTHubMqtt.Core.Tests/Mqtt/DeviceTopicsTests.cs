using IoTHubMqtt.Core.Mqtt;

namespace IoTHubMqtt.Core.Tests.Mqtt;

public sealed class DeviceTopicsTests
{
    [Fact]
    public void DeviceTopics_FollowTheHubLayout()
    {
        var topics = new DeviceTopics("dev1");

        Assert.Equal("dev1", topics.ClientId);
        Assert.Equal("devices/dev1/messages/events/", topics.TelemetryPrefix);
        Assert.Equal("devices/dev1/messages/devicebound/#", topics.CloudToDeviceSubscription);
        Assert.Equal("h.azure-devices.net/dev1/?api-version=2021-04-12", topics.UserName("h.azure-devices.net"));
        Assert.Equal("devices/dev1/messages/events/$.mid=1&a=b", topics.Telemetry([new("$.mid", "1"), new("a", "b")]));
    }

    [Fact]
    public void ModuleTopics_IncludeTheModule()
    {
        var topics = new DeviceTopics("edge", "filter");

        Assert.Equal("edge/filter", topics.ClientId);
        Assert.Equal("devices/edge/modules/filter/messages/events/", topics.TelemetryPrefix);
        Assert.Equal("h/edge/filter/?api-version=2021-04-12&DeviceClientType=x%2F1&model-id=dtmi%3Acom%3Aexample%3B1", topics.UserName("h", "dtmi:com:example;1", "x/1"));
    }

    [Theory]
    [InlineData("$iothub/methods/POST/reboot/?$rid=42", true, "reboot", "42")]
    [InlineData("$iothub/methods/POST/set%20mode/?$rid=a1", true, "set mode", "a1")]
    [InlineData("$iothub/methods/POST/reboot", false, "", "")]
    [InlineData("$iothub/methods/POST/reboot/?x=1", false, "", "")]
    [InlineData("devices/d/messages/devicebound/", false, "", "")]
    public void TryParseMethodRequest_ParsesNameAndRid(string topic, bool ok, string name, string rid)
    {
        Assert.Equal(ok, DeviceTopics.TryParseMethodRequest(topic, out var parsedName, out var parsedRid));
        if (ok)
        {
            Assert.Equal(name, parsedName);
            Assert.Equal(rid, parsedRid);
        }
    }

    [Theory]
    [InlineData("$iothub/twin/res/200/?$rid=7", true, 200, "7", null)]
    [InlineData("$iothub/twin/res/204/?$rid=8&$version=12", true, 204, "8", 12L)]
    [InlineData("$iothub/twin/res/429/?$rid=9", true, 429, "9", null)]
    [InlineData("$iothub/twin/res/abc/?$rid=9", false, 0, "", null)]
    [InlineData("$iothub/twin/res/200/", false, 0, "", null)]
    public void TryParseTwinResponse_ReadsStatusRidAndVersion(string topic, bool ok, int status, string rid, long? version)
    {
        Assert.Equal(ok, DeviceTopics.TryParseTwinResponse(topic, out var s, out var r, out var v));
        if (ok)
        {
            Assert.Equal(status, s);
            Assert.Equal(rid, r);
            Assert.Equal(version, v);
        }
    }

    [Fact]
    public void TryParseDesiredPatch_ReadsVersion()
    {
        Assert.True(DeviceTopics.TryParseDesiredPatch("$iothub/twin/PATCH/properties/desired/?$version=5", out var version));
        Assert.Equal(5, version);
        Assert.False(DeviceTopics.TryParseDesiredPatch("$iothub/twin/res/200/?$rid=1", out _));
    }

    [Fact]
    public void CloudToDeviceProperties_DecodeTheBag()
    {
        var topics = new DeviceTopics("d1");
        const string topic = "devices/d1/messages/devicebound/%24.mid=7&%24.to=%2Fdevices%2Fd1%2Fmessages%2FdeviceBound&kind=cmd";

        Assert.True(topics.IsCloudToDevice(topic));
        var message = new CloudToDeviceMessage(topic, "hi"u8.ToArray(), topics.CloudToDeviceProperties(topic), null);
        Assert.Equal("7", message.MessageId);
        Assert.Equal("/devices/d1/messages/deviceBound", message.To);
        Assert.Equal("cmd", message.Properties["kind"]);
        Assert.Equal("hi", message.BodyText);
    }
}
