using FsCheck;
using FsCheck.Fluent;
using IoTHubMqtt.Core.Mqtt;

namespace IoTHubMqtt.Core.Tests.Mqtt;

public sealed class PropertyBagTests
{
    [Fact]
    public void Encode_SystemAndApplicationProperties_UrlEncodesValues()
    {
        var text = PropertyBag.Encode([new("$.mid", "m 1"), new("$.ct", "application/json"), new("room", "a&b=c"), new("flag", null)]);

        Assert.Equal("$.mid=m%201&$.ct=application%2Fjson&room=a%26b%3Dc&flag", text);
    }

    [Fact]
    public void Decode_HubC2DBag_NormalisesPercentDollar()
    {
        var bag = PropertyBag.Decode("%24.mid=abc&%24.to=%2Fdevices%2Fd1%2Fmessages%2FdeviceBound&color=red&empty");

        Assert.Equal("abc", bag["$.mid"]);
        Assert.Equal("/devices/d1/messages/deviceBound", bag["$.to"]);
        Assert.Equal("red", bag["color"]);
        Assert.True(bag.ContainsKey("empty"));
        Assert.Null(bag["empty"]);
    }

    [Fact]
    public void EncodeThenDecode_AnyProperties_RoundTrip()
    {
        var names = ArbMap.Default.GeneratorFor<NonEmptyString>().Select(s => s.Get).Where(s => !s.StartsWith("$.", StringComparison.Ordinal));
        var values = ArbMap.Default.GeneratorFor<string>();
        var pairs = Gen.Zip(names, values).ListOf().Select(l => l.DistinctBy(p => p.Item1).ToList());

        Prop.ForAll(Arb.From(pairs), list =>
        {
            var decoded = PropertyBag.Decode(PropertyBag.Encode(list.Select(p => new KeyValuePair<string, string?>(p.Item1, p.Item2))));
            return decoded.Count == list.Count && list.All(p => decoded[p.Item1] == p.Item2);
        }).QuickCheckThrowOnFailure();
    }
}
