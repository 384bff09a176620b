using System.Management.Automation;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Credentials;

public sealed class ConvertFromIoTHubConnectionStringTests : IDisposable
{
    private const string Key = "c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkw";
    private readonly PowerShellSession ps = new();

    public void Dispose() => ps.Dispose();

    [Fact]
    public void DeviceString_ReturnsObjectWithFields()
    {
        var result = ps.Invoke($"ConvertFrom-IoTHubConnectionString 'SharedAccessKey={Key};DeviceId=dev1;HostName=myhub.azure-devices.net'");

        var item = Assert.Single(result.Output);
        Assert.Equal("Device", item.Properties["Kind"].Value.ToString());
        Assert.Equal("myhub.azure-devices.net", item.Properties["HostName"].Value);
        Assert.Equal("dev1", item.Properties["DeviceId"].Value);
        Assert.Equal(Key, item.Properties["SharedAccessKey"].Value);
    }

    [Fact]
    public void DefaultDisplay_NeverShowsTheKey()
    {
        var vars = PowerShellSession.Vars(("cs", $"HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey={Key}"));

        var table = ps.Render("ConvertFrom-IoTHubConnectionString $cs", vars);
        var text = ps.Invoke("(ConvertFrom-IoTHubConnectionString $cs).ToString()", vars).Single<string>();

        Assert.Contains("dev1", table, StringComparison.Ordinal);
        Assert.Contains("myhub.azure-devices.net", table, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, table, StringComparison.Ordinal);
        Assert.Equal("myhub.azure-devices.net/dev1", text);
    }

    [Fact]
    public void Pipeline_ManyStrings_BadOneIsNonTerminatingAndRestGoOn()
    {
        var result = ps.Invoke($"'HostName=a.net;DeviceId=d1;SharedAccessKey={Key}', 'HostName=a.net;DeviceId=d2', 'HostName=a.net;DeviceId=d3;SharedAccessKey={Key}' | ConvertFrom-IoTHubConnectionString");

        Assert.Equal(["d1", "d3"], result.Output.Select(o => (string)o.Properties["DeviceId"].Value));
        var error = Assert.Single(result.Errors);
        Assert.Equal("ConnectionStringMissingCredential,IoTHubMqtt.Commands.Credentials.ConvertFromIoTHubConnectionStringCommand", error.FullyQualifiedErrorId);
    }

    [Theory]
    [InlineData("''", "ConnectionStringEmpty")]
    [InlineData("'HostName=a.net;Foo=bar;DeviceId=d;SharedAccessKey=cGFzc3dvcmQ='", "ConnectionStringUnknownField")]
    [InlineData("'HostName=a.net;DeviceId=d;DeviceId=d;SharedAccessKey=cGFzc3dvcmQ='", "ConnectionStringDuplicateField")]
    [InlineData("'HostName=a.net;DeviceId=d;SharedAccessKey=***'", "KeyNotBase64")]
    public void BadInput_ErrorIdAndCategory(string literal, string errorId)
    {
        var result = ps.Invoke($"ConvertFrom-IoTHubConnectionString {literal}");

        var error = Assert.Single(result.Errors);
        Assert.Equal($"{errorId},IoTHubMqtt.Commands.Credentials.ConvertFromIoTHubConnectionStringCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
    }

    [Fact]
    public void SecureStringInput_IsParsed()
    {
        var result = ps.Invoke($"$s = [System.Net.NetworkCredential]::new('', 'HostName=a.net;DeviceId=d;SharedAccessKey={Key}').SecurePassword; ConvertFrom-IoTHubConnectionString -ConnectionString $s");

        Assert.Equal("d", Assert.Single(result.Output).Properties["DeviceId"].Value);
    }

    [Fact]
    public void ByPropertyName_FromCsvLikeObjects()
    {
        var result = ps.Invoke($"[pscustomobject]@{{ ConnectionString = 'HostName=a.net;DeviceId=csv1;SharedAccessKey={Key}' }} | ConvertFrom-IoTHubConnectionString");

        Assert.Equal("csv1", Assert.Single(result.Output).Properties["DeviceId"].Value);
    }

    [Fact]
    public void BadKey_ErrorNeverEchoesIt()
    {
        var result = ps.Invoke($"ConvertFrom-IoTHubConnectionString 'HostName=a.net;DeviceId=d;SharedAccessKey={Key}!'");

        Assert.DoesNotContain(Key, result.AllText(), StringComparison.Ordinal);
    }
}
