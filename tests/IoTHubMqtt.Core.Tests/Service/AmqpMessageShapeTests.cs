using System.Text;
using Amqp;
using Amqp.Framing;
using Amqp.Types;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service;

namespace IoTHubMqtt.Core.Tests.Service;

/// <summary>
/// What a hub in Azure sends that the emulator may not: the redirect of an IoT hub to its Event Hubs namespace, events
/// with typed properties and an AmqpValue body, feedback batches, and the error conditions of rejected deliveries.
/// </summary>
public sealed class AmqpMessageShapeTests
{
    [Fact]
    public void Redirect_OfAHubInAzure_NamesTheNamespaceHostPortAndEventHub()
    {
        var redirect = new Error(ErrorCode.LinkRedirect)
        {
            Info = new Fields
            {
                [new Symbol("hostname")] = "ihsuprodamres001dednamespace.servicebus.windows.net",
                [new Symbol("network-host")] = "ihsuprodamres001dednamespace.servicebus.windows.net",
                [new Symbol("port")] = 5671,
                [new Symbol("address")] = "amqps://ihsuprodamres001dednamespace.servicebus.windows.net:5671/iothub-ehub-contoso-1234-5c3c3b36f4/ConsumerGroups/$Default/Partitions/0",
            },
        };

        var (host, port, entity) = IoTHubServiceClient.ParseRedirect(redirect, "Read telemetry");

        Assert.Equal("ihsuprodamres001dednamespace.servicebus.windows.net", host);
        Assert.Equal(5671, port);
        Assert.Equal("iothub-ehub-contoso-1234-5c3c3b36f4", entity);
    }

    [Fact]
    public void Redirect_WithoutHostnameOrPort_TakesThemFromTheAddress_AndABadAddressIsAnError()
    {
        var bare = new Error(ErrorCode.LinkRedirect) { Info = new Fields { [new Symbol("address")] = "amqps://ns.servicebus.windows.net:5672/eh-1/$management" } };
        Assert.Equal(("ns.servicebus.windows.net", 5672, "eh-1"), IoTHubServiceClient.ParseRedirect(bare, "Read telemetry"));

        var bad = new Error(ErrorCode.LinkRedirect) { Info = new Fields { [new Symbol("address")] = "not an address" } };
        Assert.Equal("TelemetryRedirectInvalid", Assert.Throws<IoTHubMqttException>(() => IoTHubServiceClient.ParseRedirect(bad, "Read telemetry")).ErrorId);
    }

    [Fact]
    public void Event_FromTheEventHubCompatibleEndpoint_BecomesATelemetryEvent()
    {
        var enqueued = new DateTimeOffset(2026, 11, 23, 7, 0, 0, 123, TimeSpan.Zero);
        var amqp = new Azure.Core.Amqp.AmqpAnnotatedMessage(Azure.Core.Amqp.AmqpMessageBody.FromData([Encoding.UTF8.GetBytes("{\"t\":21.5}")]));
        amqp.Properties.MessageId = new Azure.Core.Amqp.AmqpMessageId("m-1");
        amqp.Properties.CorrelationId = new Azure.Core.Amqp.AmqpMessageId("c-1");
        amqp.Properties.ContentType = "application/json";
        amqp.Properties.ContentEncoding = "utf-8";
        amqp.MessageAnnotations["x-opt-sequence-number"] = 42L;
        amqp.MessageAnnotations["x-opt-offset"] = "8589934592";
        amqp.MessageAnnotations["x-opt-enqueued-time"] = enqueued;
        amqp.MessageAnnotations["iothub-connection-device-id"] = "sensor-1";
        amqp.MessageAnnotations["iothub-connection-auth-method"] = "{\"scope\":\"device\",\"type\":\"sas\"}";
        amqp.ApplicationProperties["unit"] = "C";
        amqp.ApplicationProperties["count"] = 3;
        amqp.ApplicationProperties["alert"] = true;

        var e = TelemetryEvent.From(new Azure.Messaging.EventHubs.EventData(amqp), "2");

        Assert.Equal(42, e.SequenceNumber);
        Assert.Equal("sensor-1", e.DeviceId);
        Assert.Equal(enqueued, e.EnqueuedTime);
        Assert.Equal("{\"t\":21.5}", Encoding.UTF8.GetString(e.Body));
        Assert.Equal("2", e.PartitionId);
        Assert.Equal("8589934592", e.Offset);
        Assert.Equal("C", e.Properties["unit"]);
        Assert.Equal("3", e.Properties["count"]);
        Assert.Equal("True", e.Properties["alert"]);
        Assert.Equal("m-1", e.SystemProperties["message-id"]);
        Assert.Equal("c-1", e.SystemProperties["correlation-id"]);
        Assert.Equal("application/json", e.SystemProperties["content-type"]);
        Assert.Equal("utf-8", e.SystemProperties["content-encoding"]);
        Assert.Equal("8589934592", e.SystemProperties["x-opt-offset"]);
        Assert.Equal("{\"scope\":\"device\",\"type\":\"sas\"}", e.SystemProperties["iothub-connection-auth-method"]);
    }

    [Fact]
    public void FeedbackBatch_AsTheHubSendsIt_IsParsedIntoRecords()
    {
        var body = """
            [{"originalMessageId":"0987654321","description":"Success","deviceGenerationId":"636","deviceId":"d-1","enqueuedTimeUtc":"2026-11-23T07:00:00.789Z","statusCode":"Success"},
             {"originalMessageId":"1234","description":"Message expired","deviceGenerationId":"636","deviceId":"d-2","enqueuedTimeUtc":"2026-11-23T07:00:01Z","statusCode":"Expired"}]
            """;
        var records = CloudMessageFeedbackReader.Parse(new Message { BodySection = new Data { Binary = Encoding.UTF8.GetBytes(body) } });

        Assert.Equal(["0987654321", "1234"], records.Select(r => r.OriginalMessageId));
        Assert.Equal(["Success", "Expired"], records.Select(r => r.StatusCode));
        Assert.Equal("Message expired", records[1].Description);
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 7, 0, 0, 789, TimeSpan.Zero), records[0].EnqueuedTime);
    }

    [Theory]
    [InlineData("amqp:not-found", "Device nobody not registered", "DeviceNotFound")]
    [InlineData("amqp:not-found", "The messaging entity 'x/ConsumerGroups/nope' could not be found", "IoTHubResourceNotFound")]
    [InlineData("amqp:unauthorized-access", "Unauthorized", "IoTHubUnauthorized")]
    [InlineData("amqp:resource-limit-exceeded", "Queue for device d1 is full", "CloudMessageQueueFull")]
    [InlineData("com.microsoft:server-busy", "Throttled", "IoTHubThrottled")]
    [InlineData("amqp:link:message-size-exceeded", "Too large", "MessageTooLarge")]
    [InlineData("amqp:connection:forced", "Idle", "IoTHubConnectionFailed")]
    [InlineData("amqp:internal-error", "Oops", "IoTHubRequestFailed")]
    public void RejectedDelivery_Condition_IsAClearError(string condition, string description, string errorId)
    {
        var error = AmqpErrors.From(new Error(new Symbol(condition)) { Description = description }, "Send cloud-to-device message", "d1");

        Assert.Equal(errorId, error.ErrorId);
        Assert.Contains(description, error.Message, StringComparison.Ordinal);
    }
}
