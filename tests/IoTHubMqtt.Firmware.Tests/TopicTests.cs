using IoTHubDevice.Logic.Mqtt;

namespace IoTHubMqtt.Firmware.Tests;

public sealed class TopicTests
{
    [Fact]
    public void Telemetry_WithPropertyBag_EncodesValuesKeepsSystemPrefix()
    {
        var bag = new PropertyBag();
        bag.Set("$.ct", "application/json");
        bag.Set("alert level", "high&urgent");

        Assert.Equal("devices/d1/messages/events/$.ct=application%2Fjson&alert+level=high%26urgent", IoTHubTopics.Telemetry("d1", bag));
        Assert.Equal("devices/d1/messages/events/", IoTHubTopics.Telemetry("d1", null));
    }

    [Fact]
    public void Parse_CloudToDevice_UrlDecodesPropertyBag()
    {
        var topic = IoTHubTopics.Parse("d1", "devices/d1/messages/devicebound/%24.mid=abc-1&%24.to=%2Fdevices%2Fd1%2Fmessages%2FdeviceBound&color=dark+red&empty");

        Assert.Equal(TopicKind.CloudToDevice, topic.Kind);
        Assert.Equal("abc-1", topic.Properties["$.mid"]);
        Assert.Equal("/devices/d1/messages/deviceBound", topic.Properties["$.to"]);
        Assert.Equal("dark red", topic.Properties["color"]);
        Assert.Equal(string.Empty, topic.Properties["empty"]);
    }

    [Fact]
    public void Parse_CloudToDevice_ForAnotherDevice_IsUnknown() =>
        Assert.Equal(TopicKind.Unknown, IoTHubTopics.Parse("d1", "devices/d2/messages/devicebound/x=1").Kind);

    [Fact]
    public void Parse_MethodRequest_NameAndRid_ResponseTopic()
    {
        var topic = IoTHubTopics.Parse("d1", "$iothub/methods/POST/setInterval/?$rid=7f");

        Assert.Equal(TopicKind.MethodRequest, topic.Kind);
        Assert.Equal("setInterval", topic.MethodName);
        Assert.Equal("7f", topic.RequestId);
        Assert.Equal("$iothub/methods/res/404/?$rid=7f", IoTHubTopics.MethodResponse(404, topic.RequestId));
    }

    [Fact]
    public void Parse_TwinResponses_StatusRidVersion()
    {
        var get = IoTHubTopics.Parse("d1", "$iothub/twin/res/200/?$rid=3");
        var patch = IoTHubTopics.Parse("d1", "$iothub/twin/res/204/?$rid=4&$version=12");

        Assert.Equal((TopicKind.TwinResponse, 200, "3", -1L), (get.Kind, get.Status, get.RequestId, get.Version));
        Assert.Equal((TopicKind.TwinResponse, 204, "4", 12L), (patch.Kind, patch.Status, patch.RequestId, patch.Version));
        Assert.Equal("$iothub/twin/GET/?$rid=3", IoTHubTopics.TwinGet("3"));
        Assert.Equal("$iothub/twin/PATCH/properties/reported/?$rid=4", IoTHubTopics.ReportedPatch("4"));
    }

    [Fact]
    public void Parse_DesiredPatch_Version()
    {
        var topic = IoTHubTopics.Parse("d1", "$iothub/twin/PATCH/properties/desired/?$version=9");

        Assert.Equal(TopicKind.DesiredPropertiesPatch, topic.Kind);
        Assert.Equal(9, topic.Version);
    }

    [Fact]
    public void Parse_DpsResponse_RetryAfter()
    {
        var topic = IoTHubTopics.Parse(null!, "$dps/registrations/res/202/?$rid=1&retry-after=3");

        Assert.Equal((TopicKind.DpsResponse, 202, "1", 3), (topic.Kind, topic.Status, topic.RequestId, topic.RetryAfterSeconds));
        Assert.Equal("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=op-1", IoTHubTopics.DpsOperationStatus("2", "op-1"));
        Assert.Equal("0ne1/registrations/r1/api-version=2019-03-31", IoTHubTopics.DpsUsername("0ne1", "r1"));
    }

    [Theory]
    [InlineData("$iothub/methods/POST/noquery")]
    [InlineData("$iothub/twin/res/abc/?$rid=1")]
    [InlineData("random/topic")]
    public void Parse_Malformed_IsUnknown(string topic) => Assert.Equal(TopicKind.Unknown, IoTHubTopics.Parse("d1", topic).Kind);

    [Fact]
    public void Username_UsesApiVersion() =>
        Assert.Equal("hub.azure-devices.net/d1/?api-version=2021-04-12", IoTHubTopics.Username("hub.azure-devices.net", "d1"));
}
