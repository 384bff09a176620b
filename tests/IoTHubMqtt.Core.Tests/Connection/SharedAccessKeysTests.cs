using System.Security.Cryptography;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Tests.Connection;

public sealed class SharedAccessKeysTests
{
    [Fact]
    public void DeriveDeviceKey_FactsVector_MatchesPublishedKey()
    {
        var key = SharedAccessKeys.DeriveDeviceKey(
            "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
            "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6");

        Assert.Equal("Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=", key);
    }

    [Fact]
    public void DeriveDeviceKey_AnyRegistrationId_IsHmacOfTheId()
    {
        var ids = Gen.Choose(1, 40).SelectMany(n => Gen.ArrayOf(Gen.Elements("abcdefghijklmnopqrstuvwxyz0123456789-._:".ToCharArray()), n))
            .Select(chars => new string(chars));
        var keys = ArbMap.Default.GeneratorFor<byte[]>().Where(k => k.Length > 0);
        Prop.ForAll(Arb.From(ids), Arb.From(keys), (id, key) =>
        {
            using var hmac = new HMACSHA256(key);
            return SharedAccessKeys.DeriveDeviceKey(Convert.ToBase64String(key), id) == Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(id)));
        }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData("Upper-Case")]
    [InlineData("has space")]
    [InlineData("")]
    public void DeriveDeviceKey_InvalidRegistrationId_Throws(string id)
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => SharedAccessKeys.DeriveDeviceKey("cGFzc3dvcmQ=", id));

        Assert.Equal("InvalidRegistrationId", ex.ErrorId);
    }

    [Theory]
    [InlineData("!!!")]
    [InlineData("abc")]
    public void Decode_NotBase64_ThrowsWithoutEchoingTheKey(string key)
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => SharedAccessKeys.Decode(key));

        Assert.Equal("KeyNotBase64", ex.ErrorId);
        Assert.DoesNotContain(key, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_ReturnsDistinct32ByteKeys()
    {
        var a = SharedAccessKeys.Generate();
        var b = SharedAccessKeys.Generate();

        Assert.NotEqual(a, b);
        Assert.Equal(32, Convert.FromBase64String(a).Length);
    }
}
