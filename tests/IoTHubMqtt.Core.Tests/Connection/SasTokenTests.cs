using System.Net;
using System.Security.Cryptography;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Tests.Connection;

public sealed class SasTokenTests
{
    [Fact]
    public void Sign_FactsVector_MatchesPublishedSignature()
    {
        // FACTS.md: key cGFzc3dvcmQ=, string-to-sign "uri\n12345".
        var signature = SasToken.Sign(Convert.FromBase64String("cGFzc3dvcmQ="), "uri\n12345");

        Assert.Equal("kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk=", signature);
    }

    [Fact]
    public void CreateAt_FactsVector_ProducesTheTokenLayout()
    {
        var token = SasToken.CreateAt("uri", Convert.FromBase64String("cGFzc3dvcmQ="), 12345);

        Assert.Equal("SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D&se=12345", token);
    }

    [Fact]
    public void CreateAt_DeviceResource_SignsTheEncodedResource()
    {
        // Independent vector: computed with Python's hmac/quote_plus as in the MicroPython write-up.
        // python3 -c "import hmac,hashlib,base64,urllib.parse as u;r=u.quote_plus('myhub.azure-devices.net/devices/dev1');
        //   print(base64.b64encode(hmac.new(base64.b64decode('c2VjcmV0'),(r+'\n1700000000').encode(),hashlib.sha256).digest()).decode())"
        var token = SasToken.CreateAt("myhub.azure-devices.net/devices/dev1", Convert.FromBase64String("c2VjcmV0"), 1700000000);

        Assert.StartsWith("SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev1&sig=", token, StringComparison.Ordinal);
        Assert.EndsWith("&se=1700000000", token, StringComparison.Ordinal);
        var info = SasToken.Parse(token);
        Assert.Equal(PythonVector, info.Signature);
    }

    // Value printed by the python3 line in the test above.
    private const string PythonVector = "lyZTrGw+lnYse5XnZK1FuHvRECjYRAUJKhUEcCB7k3k=";

    [Fact]
    public void CreateAt_PolicyName_IsAppendedAsSkn()
    {
        var token = SasToken.CreateAt("h.azure-devices.net", Convert.FromBase64String("cGFzc3dvcmQ="), 99, "iothubowner");

        Assert.EndsWith("&se=99&skn=iothubowner", token, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_ExpiryInPast_Throws()
    {
        var now = DateTimeOffset.UtcNow;

        var ex = Assert.Throws<IoTHubMqttException>(() => SasToken.Create("r", "cGFzc3dvcmQ=", now.AddSeconds(-1), now: now));

        Assert.Equal("ExpiryInPast", ex.ErrorId);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void CreateForTimeToLive_NotPositive_Throws(int seconds)
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => SasToken.CreateForTimeToLive("r", "cGFzc3dvcmQ=", TimeSpan.FromSeconds(seconds)));

        Assert.Equal("TimeToLiveNotPositive", ex.ErrorId);
    }

    [Fact]
    public void CreateForTimeToLive_Huge_ThrowsClearError()
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => SasToken.CreateForTimeToLive("r", "cGFzc3dvcmQ=", TimeSpan.MaxValue));

        Assert.Equal("TimeToLiveTooLarge", ex.ErrorId);
    }

    [Fact]
    public void CreateForTimeToLive_OneHour_ExpiresAnHourFromNow()
    {
        var now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);

        var info = SasToken.Parse(SasToken.CreateForTimeToLive("r", "cGFzc3dvcmQ=", TimeSpan.FromHours(1), now: now));

        Assert.Equal(1_800_003_600, info.ExpiryUnixSeconds);
    }

    [Theory]
    [InlineData("not a token")]
    [InlineData("SharedAccessSignature sr=a&se=1")]
    [InlineData("SharedAccessSignature sr=a&sig=b&se=soon")]
    [InlineData("SharedAccessSignature sr=a&sig=b&se=1&sr=c")]
    [InlineData("SharedAccessSignature sr=a&sig=b&se=1&zz=c")]
    public void Parse_Malformed_Throws(string token)
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => SasToken.Parse(token));

        Assert.Equal("SasTokenMalformed", ex.ErrorId);
    }

    [Fact]
    public void SasTokenInfo_ToString_LeavesOutTheSignature()
    {
        var info = SasToken.Parse(SasToken.CreateAt("h/devices/d", Convert.FromBase64String("cGFzc3dvcmQ="), 2_000_000_000));

        Assert.DoesNotContain(info.Signature, info.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void CreateAt_AnyResourceKeyAndExpiry_VerifiesWithAnIndependentHmac()
    {
        // Property: for any resource, key and expiry, the token's sig is HMAC-SHA256 over exactly the sr= text + "\n" + se,
        // checked with System.Security.Cryptography.HMACSHA256 instances rather than the static helper the code uses.
        var resources = Gen.Elements("h.azure-devices.net", "h.azure-devices.net/devices/", "0ne00000000/registrations/")
            .SelectMany(prefix => ArbMap.Default.GeneratorFor<NonEmptyString>().Select(s => prefix + s.Get));
        var keys = ArbMap.Default.GeneratorFor<byte[]>().Where(k => k.Length > 0);
        var expiries = Gen.Choose(1, int.MaxValue);

        Prop.ForAll(Arb.From(resources), Arb.From(keys), Arb.From(expiries), (resource, key, expiry) =>
        {
            var token = SasToken.CreateAt(resource, key, expiry);
            var fields = token["SharedAccessSignature ".Length..].Split('&').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
            using var hmac = new HMACSHA256(key);
            var expected = Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(fields["sr"] + "\n" + fields["se"])));
            return WebUtility.UrlDecode(fields["sig"]) == expected
                && WebUtility.UrlDecode(fields["sr"]) == resource
                && fields["se"] == expiry.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }).QuickCheckThrowOnFailure();
    }
}
