using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Tests.Connection;

public sealed class ConnectionStringTests
{
    private const string Key = "cGFzc3dvcmQ=";

    [Fact]
    public void Parse_DeviceString_ReadsEveryField()
    {
        var cs = IoTHubConnectionString.Parse($"HostName=myhub.azure-devices.net;DeviceId=dev-1;SharedAccessKey={Key}");

        Assert.Equal(ConnectionStringKind.Device, cs.Kind);
        Assert.Equal("myhub.azure-devices.net", cs.HostName);
        Assert.Equal("myhub", cs.HubName);
        Assert.Equal("dev-1", cs.DeviceId);
        Assert.Null(cs.ModuleId);
        Assert.Equal(Key, cs.SharedAccessKey);
        Assert.Equal("myhub.azure-devices.net/devices/dev-1", cs.ResourceUri);
        Assert.Equal("myhub.azure-devices.net", cs.ConnectHostName);
    }

    [Fact]
    public void Parse_FieldsInAnyOrderWithPaddedKey_KeepsEqualsInValues()
    {
        var cs = IoTHubConnectionString.Parse($"SharedAccessKey=YWJjZA==;DeviceId=d;HostName=h.example.com;");

        Assert.Equal("YWJjZA==", cs.SharedAccessKey);
        Assert.Equal("d", cs.DeviceId);
    }

    [Fact]
    public void Parse_ModuleString_UsesModuleResource()
    {
        var cs = IoTHubConnectionString.Parse($"HostName=h.azure-devices.net;DeviceId=edge1;ModuleId=temp;SharedAccessKey={Key}");

        Assert.Equal(ConnectionStringKind.Module, cs.Kind);
        Assert.Equal("h.azure-devices.net/devices/edge1/modules/temp", cs.ResourceUri);
    }

    [Fact]
    public void Parse_PolicyString_UsesHubResourceAndKeyName()
    {
        var cs = IoTHubConnectionString.Parse($"HostName=h.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey={Key}");

        Assert.Equal(ConnectionStringKind.Policy, cs.Kind);
        Assert.Equal("iothubowner", cs.SharedAccessKeyName);
        Assert.Equal("h.azure-devices.net", cs.ResourceUri);
    }

    [Fact]
    public void Parse_GatewayAndX509_AreRead()
    {
        var cs = IoTHubConnectionString.Parse("HostName=h.azure-devices.net;DeviceId=d;x509=true;GatewayHostName=edge.local");

        Assert.True(cs.UsesX509);
        Assert.Equal("edge.local", cs.GatewayHostName);
        Assert.Equal("edge.local", cs.ConnectHostName);
        Assert.Null(cs.SharedAccessKey);
    }

    [Theory]
    [InlineData("", "ConnectionStringEmpty")]
    [InlineData("   ", "ConnectionStringEmpty")]
    [InlineData(";;", "ConnectionStringEmpty")]
    [InlineData("DeviceId=d;SharedAccessKey=cGFzc3dvcmQ=", "ConnectionStringMissingHostName")]
    [InlineData("HostName=h.net;DeviceId=d", "ConnectionStringMissingCredential")]
    [InlineData("HostName=h.net;SharedAccessKey=cGFzc3dvcmQ=", "ConnectionStringMissingDeviceId")]
    [InlineData("HostName=h.net;DeviceId=d;DeviceId=e;SharedAccessKey=cGFzc3dvcmQ=", "ConnectionStringDuplicateField")]
    [InlineData("HostName=h.net;DeviceId=d;Colour=blue;SharedAccessKey=cGFzc3dvcmQ=", "ConnectionStringUnknownField")]
    [InlineData("hostname=h.net;DeviceId=d;SharedAccessKey=cGFzc3dvcmQ=", "ConnectionStringUnknownField")]
    [InlineData("HostName=h.net;DeviceId=d;SharedAccessKey=not*base64", "KeyNotBase64")]
    [InlineData("HostName=h.net;DeviceId=d;SharedAccessKey=", "ConnectionStringEmptyField")]
    [InlineData("HostName=h.net;DeviceId=d;justtext", "ConnectionStringMalformedField")]
    [InlineData("HostName=h.net;ModuleId=m;SharedAccessKey=cGFzc3dvcmQ=", "ConnectionStringModuleWithoutDevice")]
    [InlineData("HostName=h.net;DeviceId=d;SharedAccessKey=cGFzc3dvcmQ=;x509=true", "ConnectionStringConflictingCredentials")]
    [InlineData("HostName=h.net;DeviceId=d;x509=maybe", "ConnectionStringInvalidX509")]
    [InlineData("HostName=bad host;DeviceId=d;SharedAccessKey=cGFzc3dvcmQ=", "ConnectionStringInvalidHostName")]
    [InlineData("HostName=h.net;DeviceId=bad/id;SharedAccessKey=cGFzc3dvcmQ=", "InvalidDeviceId")]
    public void Parse_BadInput_ThrowsWithStableErrorId(string text, string errorId)
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => IoTHubConnectionString.Parse(text));

        Assert.Equal(errorId, ex.ErrorId);
        Assert.Equal(IoTHubErrorKind.InvalidArgument, ex.Kind);
    }

    [Fact]
    public void Parse_UnknownFieldWithWrongCase_SuggestsTheRightName()
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => IoTHubConnectionString.Parse($"HostName=h.net;deviceid=d;SharedAccessKey={Key}"));

        Assert.Contains("DeviceId", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("HostName=h.net;DeviceId=d;SharedAccessKey=c2VjcmV0LWtleS1tYXRlcmlhbA==;x509=true", "c2VjcmV0LWtleS1tYXRlcmlhbA")]
    [InlineData("HostName=h.net;DeviceId=d;SharedAccessKey=c2VjcmV0LWtleS1tYXRlcmlhbA*=", "c2VjcmV0LWtleS1tYXRlcmlhbA")]
    [InlineData("HostName=h.net;DeviceId=d;c2VjcmV0LWtleS1tYXRlcmlhbA==", "c2VjcmV0LWtleS1tYXRlcmlhbA")]
    [InlineData("HostName=h.net;DeviceId=d;SharedAccessKey=abc;c2VjcmV0LWtleS1tYXRl=cmlhbA==", "c2VjcmV0LWtleS1tYXRl")]
    public void Parse_BadInput_NeverEchoesKeyMaterial(string text, string secret)
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => IoTHubConnectionString.Parse(text));

        Assert.DoesNotContain(secret, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, ex.Target?.ToString() ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public void ToString_NeverContainsTheKey()
    {
        var cs = IoTHubConnectionString.Parse($"HostName=h.net;DeviceId=d;SharedAccessKey={Key}");

        Assert.Equal("h.net/d", cs.ToString());
        Assert.DoesNotContain(Key, cs.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ToConnectionString_RoundTrips()
    {
        var text = $"HostName=h.net;DeviceId=d;ModuleId=m;SharedAccessKey={Key};GatewayHostName=gw.local";

        var again = IoTHubConnectionString.Parse(IoTHubConnectionString.Parse(text).ToConnectionString());

        Assert.Equal("m", again.ModuleId);
        Assert.Equal(Key, again.SharedAccessKey);
        Assert.Equal("gw.local", again.GatewayHostName);
    }
}
