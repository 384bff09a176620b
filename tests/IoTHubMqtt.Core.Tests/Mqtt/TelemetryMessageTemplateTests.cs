using System.Text;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>
/// The messages of one send made from a template (Send-IoTHubMessage's parameters), and the sent messages reported in
/// the order they were sent.
/// </summary>
public sealed class TelemetryMessageTemplateTests
{
    private static readonly Func<object, string> Json = value => $"{{\"v\":\"{value}\"}}";

    [Fact]
    public void Bodies_GetTheContentTypeOfTheirKind_AndTheTemplatesFields()
    {
        var created = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var template = new TelemetryMessageTemplate([new("n", 1.5), new("when", created), new("ok", true), new("none", null)])
        {
            MessageId = "m1", CorrelationId = "c1", CreationTime = created, QualityOfService = TelemetryQualityOfService.AtMostOnce,
        };

        var text = template.From("hi", Json, out var shownText, out var textBuffer);
        var bytes = template.From(new byte[] { 1, 2 }, Json, out var shownBytes, out _);
        var json = template.From(42, Json, out var shownJson, out _);

        Assert.Equal(("text/plain", "utf-8", "hi"), (text.ContentType, text.ContentEncoding, (string)shownText!));
        Assert.Null(textBuffer);
        Assert.Equal(("application/octet-stream", (string?)null), (bytes.ContentType, bytes.ContentEncoding));
        Assert.Equal(new byte[] { 1, 2 }, (byte[])shownBytes!);
        Assert.Equal(("application/json", "{\"v\":\"42\"}"), (json.ContentType, (string)shownJson!));
        Assert.All(new[] { text, bytes, json }, m =>
        {
            Assert.Equal(("m1", "c1", created, TelemetryQualityOfService.AtMostOnce), (m.MessageId, m.CorrelationId, m.CreationTime, m.QualityOfService));
            Assert.Equal(new KeyValuePair<string, string?>[] { new("n", "1.5"), new("when", "2026-01-02T03:04:05.0000000+00:00"), new("ok", "true"), new("none", null) }, m.Properties);
        });
    }

    [Fact]
    public void AGivenContentType_IsUsedForEveryKindOfBody()
    {
        var template = new TelemetryMessageTemplate { ContentType = "application/vnd.x", ContentEncoding = "utf-16" };

        Assert.All(new[] { template.FromText("a", out _), template.FromBytes([1]), template.FromJson("{}", out _) }, m => Assert.Equal(("application/vnd.x", "utf-16"), (m.ContentType, m.ContentEncoding)));
    }

    [Fact]
    public void ALargeTextBody_IsEncodedIntoAPooledBuffer()
    {
        var text = new string('x', PayloadBuffers.PooledFrom * 2);

        var message = new TelemetryMessageTemplate().FromText(text, out var buffer);

        Assert.NotNull(buffer);
        Assert.Equal(text, Encoding.UTF8.GetString(message.Payload.Span));
        PayloadBuffers.Return(buffer);
    }

    [Theory]
    [InlineData(4096, "é")] // 2 bytes a character: does not fit a buffer of one byte a character
    [InlineData(3000, "€")] // fewer characters than pooled, more bytes than pooled
    [InlineData(5000, "x€")] // a little larger than the character count: fits the power-of-two buffer
    [InlineData(4096, "😀")] // surrogate pairs: 4 bytes for 2 characters
    public void LargeNonAsciiText_IsEncodedWhole(int repeat, string unit)
    {
        var text = string.Concat(Enumerable.Repeat(unit, repeat));

        var message = new TelemetryMessageTemplate().FromText(text, out var buffer);

        Assert.Equal(Encoding.UTF8.GetByteCount(text), message.Payload.Length);
        Assert.Equal(text, Encoding.UTF8.GetString(message.Payload.Span));
        PayloadBuffers.Return(buffer);
    }

    [Fact]
    public void ANullBody_IsMessageBodyNull()
    {
        var error = Assert.Throws<IoTHubMqttException>(() => new TelemetryMessageTemplate().From(null, Json, out _, out _));

        Assert.Equal(ErrorIds.MessageBodyNull, error.ErrorId);
    }

    [Fact]
    public void ABadProperty_FailsEveryMessage_BeforeAnyBufferIsTaken()
    {
        var empty = new TelemetryMessageTemplate([new("", "x")]);
        var reserved = new TelemetryMessageTemplate([new("$.mid", "x")]);
        var large = new string('x', PayloadBuffers.PooledFrom * 2);

        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(ErrorIds.PropertyNameEmpty, Assert.Throws<IoTHubMqttException>(() => empty.FromText(large, out _)).ErrorId);
            Assert.Contains("reserved", Assert.Throws<ArgumentException>(() => reserved.FromBytes([1])).Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Acknowledgements_AreTakenInTheOrderSent_OnlyOnceTheHeadHasCompleted()
    {
        var acks = new TelemetryAcknowledgements<string>();
        var first = new TaskCompletionSource<TelemetrySendResult>();
        var second = new TaskCompletionSource<TelemetrySendResult>();
        acks.Add(first.Task, new TelemetryMessage([1]), "first", null);
        acks.Add(second.Task, new TelemetryMessage([2]), "second", null);

        second.SetResult(new TelemetrySendResult(null, 1, DateTimeOffset.UtcNow, 1));
        Assert.False(acks.TryTake(all: false, out _));
        first.SetException(new IoTHubMqttException(ErrorIds.TelemetryRejected, "no"));
        await acks.WhenAllAsync(TestContext.Current.CancellationToken);

        Assert.True(acks.TryTake(all: false, out var a));
        Assert.True(acks.TryTake(all: false, out var b));
        Assert.False(acks.TryTake(all: true, out _));
        Assert.Equal(("first", true), (a.State, a.Acknowledged.IsFaulted));
        Assert.Equal(("second", "Sent 1 bytes; acknowledged after 1 attempt(s)."), (b.State, b.Describe()));
        Assert.Equal(1, acks.Acknowledged);
    }
}
