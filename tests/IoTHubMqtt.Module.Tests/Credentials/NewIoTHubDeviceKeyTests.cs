using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Credentials;

public sealed class NewIoTHubDeviceKeyTests : IDisposable
{
    private const string GroupKey = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";
    private readonly PowerShellSession ps = new();

    public void Dispose() => ps.Dispose();

    [Fact]
    public void FactsVector_DerivesPublishedKey()
    {
        var result = ps.Invoke($"New-IoTHubDeviceKey -GroupKey '{GroupKey}' -RegistrationId 'sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6'");

        var item = Assert.Single(result.Output);
        Assert.Equal("sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", item.Properties["RegistrationId"].Value);
        Assert.Equal("Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=", item.Properties["DeviceKey"].Value);
    }

    [Fact]
    public void Pipeline_RegistrationIds_OneKeyEach_BadIdIsNonTerminating()
    {
        var result = ps.Invoke($"'dev-a', 'NotLower', 'dev-b' | New-IoTHubDeviceKey -GroupKey '{GroupKey}'");

        Assert.Equal(["dev-a", "dev-b"], result.Output.Select(o => (string)o.Properties["RegistrationId"].Value));
        var error = Assert.Single(result.Errors);
        Assert.Equal("InvalidRegistrationId,IoTHubMqtt.Commands.Credentials.NewIoTHubDeviceKeyCommand", error.FullyQualifiedErrorId);
        Assert.Equal("NotLower", error.TargetObject);
    }

    [Fact]
    public void Pipeline_ByPropertyName_DeviceIdColumn()
    {
        var result = ps.Invoke($"[pscustomobject]@{{ DeviceId = 'sensor-1' }}, [pscustomobject]@{{ DeviceId = 'sensor-2' }} | New-IoTHubDeviceKey -GroupKey '{GroupKey}'");

        Assert.Equal(2, result.Output.Count);
        Assert.NotEqual(result.Output[0].Properties["DeviceKey"].Value, result.Output[1].Properties["DeviceKey"].Value);
    }

    [Fact]
    public void BadGroupKey_IsTerminatingAndDoesNotEchoIt()
    {
        var result = ps.Invoke("New-IoTHubDeviceKey -GroupKey 'c2VjcmV0LWtleS1tYXRl*' -RegistrationId a, b");

        var error = Assert.Single(result.AllErrors);
        Assert.Equal("KeyNotBase64,IoTHubMqtt.Commands.Credentials.NewIoTHubDeviceKeyCommand", error.FullyQualifiedErrorId);
        Assert.DoesNotContain("c2VjcmV0LWtleS1tYXRl", result.AllText(), StringComparison.Ordinal);
        Assert.Empty(result.Output);
    }

    [Fact]
    public void Random_CreatesDistinctKeys()
    {
        var result = ps.Invoke("New-IoTHubDeviceKey -Random -Count 3");

        Assert.Equal(3, result.Output.Select(o => (string)o.Properties["DeviceKey"].Value).Distinct().Count());
    }

    [Fact]
    public void DefaultView_ShowsFingerprintNotKey()
    {
        var text = ps.Render($"New-IoTHubDeviceKey -GroupKey '{GroupKey}' -RegistrationId 'sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6'");

        Assert.Contains("sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Jsm0lyGpjaVYVP2g3FnmnmG9dI", text, StringComparison.Ordinal);
    }
}
