using System.Management.Automation;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Credentials;

public sealed class NewIoTHubSasTokenTests : IDisposable
{
    private const string Key = "cGFzc3dvcmQ=";
    private const string DeviceString = "HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=" + Key;
    private readonly PowerShellSession ps = new();

    public void Dispose() => ps.Dispose();

    private static Dictionary<string, string> Fields(string token) =>
        token["SharedAccessSignature ".Length..].Split('&').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => WebUtility.UrlDecode(p[1]));

    private static string Expected(string resource, string key, string se)
    {
        using var hmac = new HMACSHA256(Convert.FromBase64String(key));
        return Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(WebUtility.UrlEncode(resource) + "\n" + se)));
    }

    [Fact]
    public void ResourceAndKey_DefaultTimeToLive_IsOneHourAndVerifies()
    {
        var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        var result = ps.Invoke($"New-IoTHubSasToken -ResourceUri 'myhub.azure-devices.net/devices/dev1' -Key '{Key}'");

        Assert.Empty(result.AllErrors);
        var fields = Fields(result.Single<string>());
        Assert.Equal("myhub.azure-devices.net/devices/dev1", fields["sr"]);
        Assert.InRange(long.Parse(fields["se"], System.Globalization.CultureInfo.InvariantCulture) - before, 3599, 3601);
        Assert.Equal(Expected(fields["sr"], Key, fields["se"]), fields["sig"]);
        Assert.False(fields.ContainsKey("skn"));
    }

    [Fact]
    public void Expiry_GivenAsDateTimeOffset_IsUsedExactly()
    {
        var result = ps.Invoke($"New-IoTHubSasToken 'h.azure-devices.net' '{Key}' -KeyName iothubowner -Expiry ([DateTimeOffset]::FromUnixTimeSeconds(4102444800))");

        var fields = Fields(result.Single<string>());
        Assert.Equal("4102444800", fields["se"]);
        Assert.Equal("iothubowner", fields["skn"]);
        Assert.Equal(Expected("h.azure-devices.net", Key, "4102444800"), fields["sig"]);
    }

    [Fact]
    public void ConnectionString_Device_SignsDeviceResource()
    {
        var result = ps.Invoke($"New-IoTHubSasToken -ConnectionString '{DeviceString}' -TimeToLive ([TimeSpan]::FromMinutes(5))");

        var fields = Fields(result.Single<string>());
        Assert.Equal("myhub.azure-devices.net/devices/dev1", fields["sr"]);
    }

    [Fact]
    public void ConnectionString_Policy_AddsKeyName()
    {
        var result = ps.Invoke($"New-IoTHubSasToken -ConnectionString 'HostName=h.azure-devices.net;SharedAccessKeyName=service;SharedAccessKey={Key}'");

        var fields = Fields(result.Single<string>());
        Assert.Equal("h.azure-devices.net", fields["sr"]);
        Assert.Equal("service", fields["skn"]);
    }

    [Fact]
    public void Pipeline_ParsedConnectionStrings_BindByPropertyName()
    {
        var result = ps.Invoke($"'{DeviceString}', 'HostName=myhub.azure-devices.net;DeviceId=dev2;ModuleId=m;SharedAccessKey={Key}' | ConvertFrom-IoTHubConnectionString | New-IoTHubSasToken");

        Assert.Empty(result.AllErrors);
        Assert.Equal(2, result.Output.Count);
        Assert.Equal("myhub.azure-devices.net/devices/dev2/modules/m", Fields((string)result.Output[1].BaseObject)["sr"]);
    }

    [Fact]
    public void Key_AsSecureString_IsAccepted()
    {
        var result = ps.Invoke("$k = [System.Net.NetworkCredential]::new('', 'cGFzc3dvcmQ=').SecurePassword; New-IoTHubSasToken -ResourceUri r -Key $k");

        Assert.Empty(result.AllErrors);
        Assert.Single(result.Output);
    }

    [Theory]
    [InlineData("New-IoTHubSasToken -ResourceUri r -Key 'not base64!'", "KeyNotBase64", ErrorCategory.InvalidArgument)]
    [InlineData("New-IoTHubSasToken -ResourceUri r -Key 'cGFzc3dvcmQ=' -TimeToLive 0", "TimeToLiveNotPositive", ErrorCategory.InvalidArgument)]
    [InlineData("New-IoTHubSasToken -ResourceUri r -Key 'cGFzc3dvcmQ=' -TimeToLive ([TimeSpan]::FromSeconds(-1))", "TimeToLiveNotPositive", ErrorCategory.InvalidArgument)]
    [InlineData("New-IoTHubSasToken -ResourceUri r -Key 'cGFzc3dvcmQ=' -Expiry ([DateTimeOffset]::UtcNow.AddMinutes(-1))", "ExpiryInPast", ErrorCategory.InvalidArgument)]
    [InlineData("New-IoTHubSasToken -ConnectionString 'DeviceId=d;SharedAccessKey=cGFzc3dvcmQ='", "ConnectionStringMissingHostName", ErrorCategory.InvalidArgument)]
    [InlineData("New-IoTHubSasToken -ConnectionString 'HostName=h.net;DeviceId=d;x509=true'", "ConnectionStringHasNoKey", ErrorCategory.InvalidArgument)]
    [InlineData("New-IoTHubSasToken -ResourceUri 'a b' -Key 'cGFzc3dvcmQ='", "ResourceUriInvalid", ErrorCategory.InvalidArgument)]
    public void BadInput_IsAnErrorRecordWithStableId(string script, string errorId, ErrorCategory category)
    {
        var result = ps.Invoke(script);

        var error = Assert.Single(result.AllErrors);
        Assert.Equal($"{errorId},IoTHubMqtt.Commands.Credentials.NewIoTHubSasTokenCommand", error.FullyQualifiedErrorId);
        Assert.Equal(category, error.CategoryInfo.Category);
        Assert.Empty(result.Output);
        Assert.DoesNotContain("   at ", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void BothExpiryAndTimeToLive_IsAParameterSetError()
    {
        var result = ps.Invoke($"New-IoTHubSasToken -ResourceUri r -Key '{Key}' -Expiry ([DateTimeOffset]::UtcNow.AddHours(1)) -TimeToLive 00:10:00");

        Assert.Equal("AmbiguousParameterSet,IoTHubMqtt.Commands.Credentials.NewIoTHubSasTokenCommand", Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void Verbose_AndErrors_NeverContainTheKeyOrToken()
    {
        const string secretKey = "c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkw";

        var result = ps.Invoke($"New-IoTHubSasToken -ConnectionString 'HostName=h.net;DeviceId=d;SharedAccessKey={secretKey}' -Verbose; New-IoTHubSasToken -ResourceUri r -Key '{secretKey}*' -Verbose");

        var token = (string)result.Output[0].BaseObject;
        var sig = Fields(token)["sig"];
        Assert.NotEmpty(result.Verbose);
        var streams = string.Join("\n", result.Verbose.Select(v => v.Message).Concat(result.AllErrors.Select(e => e.ToString() + e.Exception + e.ErrorDetails?.RecommendedAction)));
        Assert.DoesNotContain(secretKey, streams, StringComparison.Ordinal);
        Assert.DoesNotContain(sig, streams, StringComparison.Ordinal);
    }
}
