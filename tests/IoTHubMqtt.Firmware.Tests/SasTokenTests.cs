using System.Text;
using IoTHubDevice.Logic.Platform;
using IoTHubDevice.Logic.Security;
using CoreSas = IoTHubMqtt.Core.Connection.SasToken;

namespace IoTHubMqtt.Firmware.Tests;

public sealed class SasTokenTests
{
    private readonly NetHmacSha256 hmac = new();

    [Fact]
    public void Sign_FactsVector_MatchesPublishedSignature()
    {
        var signature = SharedAccessSignature.Sign(hmac, Convert.FromBase64String("cGFzc3dvcmQ="), "uri\n12345");

        Assert.Equal("kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk=", signature);
    }

    [Fact]
    public void Create_DeviceToken_EqualsTheModulesToken()
    {
        var key = Convert.FromBase64String("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        const string resource = "my-hub.azure-devices.net/devices/sensor 01";

        var token = SharedAccessSignature.Create(hmac, resource, key, 1767225600, null);

        Assert.Equal(CoreSas.CreateAt(resource, key, 1767225600), token);
        Assert.StartsWith("SharedAccessSignature sr=my-hub.azure-devices.net%2Fdevices%2Fsensor+01&sig=", token, StringComparison.Ordinal);
        Assert.EndsWith("&se=1767225600", token, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_DeviceToken_SignatureIsHmacOfEncodedResourceAndExpiry()
    {
        var key = Encoding.ASCII.GetBytes("device-key-bytes");
        var token = SharedAccessSignature.Create(hmac, "hub.example/devices/d1", key, 2000000000, null);

        var expected = Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(key, Encoding.UTF8.GetBytes("hub.example%2Fdevices%2Fd1\n2000000000")));
        Assert.Contains("&sig=" + Uri.EscapeDataString(expected) + "&", token, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_WithPolicy_AppendsSkn()
    {
        var token = SharedAccessSignature.Create(hmac, "0ne00000001/registrations/dev-1", new byte[] { 1, 2, 3 }, 1800000000, "registration");

        Assert.Equal(CoreSas.CreateAt("0ne00000001/registrations/dev-1", new byte[] { 1, 2, 3 }, 1800000000, "registration"), token);
        Assert.EndsWith("&skn=registration", token, StringComparison.Ordinal);
    }

    [Fact]
    public void DeriveDeviceKey_FactsGroupEnrollmentVector()
    {
        var key = SharedAccessSignature.DeriveDeviceKey(hmac,
            Convert.FromBase64String("8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="), "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6");

        Assert.Equal("Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=", key);
    }

    [Fact]
    public void TokenLifetime_Default_Is24HoursRenewedAt85Percent()
    {
        var lifetime = new TokenLifetime();

        Assert.Equal(1_700_000_000 + 86_400, lifetime.ExpiryFor(1_700_000_000));
        Assert.Equal(1_700_000_000 + 73_440, lifetime.RenewAtFor(1_700_000_000));
    }

    [Theory]
    [InlineData(59, 85)]
    [InlineData(3600, 5)]
    [InlineData(3600, 99)]
    public void TokenLifetime_OutOfRange_Throws(long seconds, int percent) =>
        Assert.Throws<IoTHubDevice.Logic.DeviceLogicException>(() => new TokenLifetime(seconds, percent));

    [Fact]
    public void DeviceTime_Year2000Clock_IsNotPlausible_EmbeddedEpochConverts()
    {
        Assert.False(DeviceTime.IsPlausible(946684800 + 42));
        Assert.True(DeviceTime.IsPlausible(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds(),
            DeviceTime.FromEmbeddedEpoch((long)(new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc) - new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalSeconds));
    }

    [Theory]
    [InlineData("a b+c/d=é", "a+b%2Bc%2Fd%3D%C3%A9")]
    [InlineData("-_.!*()", "-_.!*()")]
    public void UrlEncoding_MatchesWebUtility(string raw, string encoded)
    {
        Assert.Equal(encoded, UrlEncoding.Encode(raw));
        Assert.Equal(System.Net.WebUtility.UrlEncode(raw), UrlEncoding.Encode(raw));
        Assert.Equal(raw, UrlEncoding.Decode(encoded));
    }
}
