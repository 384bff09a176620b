using IoTHubDevice.Logic.Json;

namespace IoTHubMqtt.Firmware.Tests;

public sealed class JsonTests
{
    [Fact]
    public void Parse_TwinWithNestedObjectsAndNulls_KeepsNullDistinctFromMissing()
    {
        var twin = (JsonObject)JsonReader.Parse("{\"desired\":{\"telemetryInterval\":30,\"led\":{\"on\":true,\"color\":null},\"$version\":7},\"reported\":{\"$version\":2}}");

        var desired = twin.GetObject("desired")!;
        Assert.Equal(30L, desired["telemetryInterval"]);
        Assert.True(desired.TryGetInteger("$version", out var version));
        Assert.Equal(7, version);
        var led = desired.GetObject("led")!;
        Assert.Equal(true, led["on"]);
        Assert.True(led.Contains("color"));
        Assert.Null(led["color"]);
        Assert.False(led.Contains("brightness"));
    }

    [Fact]
    public void Parse_StringEscapes_IncludingSurrogatePairs()
    {
        var value = (string)JsonReader.Parse("\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\ud83d\\ude00\"")!;

        Assert.Equal("a\"b\\c/d\n\té😀", value);
    }

    [Theory]
    [InlineData("0", 0L)]
    [InlineData("-12", -12L)]
    [InlineData("9223372036854775807", long.MaxValue)]
    public void Parse_Integers_AreLong(string text, long expected) => Assert.Equal(expected, JsonReader.Parse(text));

    [Theory]
    [InlineData("1.5", 1.5)]
    [InlineData("-2e3", -2000.0)]
    [InlineData("1E-2", 0.01)]
    [InlineData("92233720368547758070", 9.223372036854776E19)]
    public void Parse_NonIntegers_AreDouble(string text, double expected) => Assert.Equal(expected, JsonReader.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"a\" 1}")]
    [InlineData("[1,]")]
    [InlineData("01")]
    [InlineData("\"unterminated")]
    [InlineData("\"bad \\x escape\"")]
    [InlineData("tru")]
    [InlineData("{} extra")]
    [InlineData("\"\u0001\"")]
    public void Parse_Malformed_ThrowsJsonException(string text) => Assert.Throws<JsonException>(() => JsonReader.Parse(text));

    [Fact]
    public void Parse_TooDeep_Throws()
    {
        var text = new string('[', JsonReader.MaxDepth + 2) + new string(']', JsonReader.MaxDepth + 2);

        Assert.Throws<JsonException>(() => JsonReader.Parse(text));
    }

    [Fact]
    public void Serialize_RoundTripsThroughSystemTextJson()
    {
        var obj = new JsonObject();
        obj.Set("text", "quote \" backslash \\ newline \n control \u0002 é");
        obj.Set("int", 42L);
        obj.Set("double", 0.1);
        obj.Set("flag", false);
        obj.Set("nothing", null);
        var array = new JsonArray();
        array.Add(1L);
        array.Add("two");
        obj.Set("array", array);

        var text = JsonWriter.Serialize(obj);
        using var doc = System.Text.Json.JsonDocument.Parse(text);

        Assert.Equal("quote \" backslash \\ newline \n control \u0002 é", doc.RootElement.GetProperty("text").GetString());
        Assert.Equal(0.1, doc.RootElement.GetProperty("double").GetDouble());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, doc.RootElement.GetProperty("nothing").ValueKind);
        Assert.Equal(text, JsonWriter.Serialize(JsonReader.Parse(text)));
    }
}
