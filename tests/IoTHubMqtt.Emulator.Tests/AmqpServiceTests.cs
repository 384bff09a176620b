using System.Text;
using Amqp;
using Amqp.Framing;
using Amqp.Sasl;
using Amqp.Types;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>The service side over AMQP with an AMQPNetLite client: CBS put-token, C2D send, telemetry read.</summary>
public sealed class AmqpServiceTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    private IoTHubEmulator Emulator => fixture.Emulator;

    /// <summary>Connects over TLS with SASL ANONYMOUS, or (<paramref name="sasl"/> false) with the plain AMQP header, as the Node.js SDK does.</summary>
    private async Task<Connection> ConnectAsync(bool sasl = true)
    {
        var factory = new ConnectionFactory();
        factory.SSL.RemoteCertificateValidationCallback = (_, cert, _, errors) => fixture.Trust.Validate(cert, errors);
        if (sasl)
        {
            factory.SASL.Profile = SaslProfile.Anonymous;
        }

        return await factory.CreateAsync(new Address("localhost", Emulator.AmqpPort, null, null, "/", "amqps")).WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Puts a token on $cbs; with <paramref name="replyTarget"/> null the reply link has no target address (as the Node.js SDK attaches it).</summary>
    private static async Task<int> PutTokenAsync(Session session, string audience, string token, string? replyTarget = "cbs-reply")
    {
        var sender = new SenderLink(session, "cbs-sender", "$cbs");
        var receiver = new ReceiverLink(session, "cbs-receiver", new Attach { Source = new Source { Address = "$cbs" }, Target = new Target { Address = replyTarget } }, null);
        receiver.SetCredit(5); // before the request, so the response can be delivered
        try
        {
            var request = new Message(token)
            {
                Properties = new Properties { MessageId = "cbs-1", ReplyTo = replyTarget ?? "cbs" },
                ApplicationProperties = new ApplicationProperties(),
            };
            request.ApplicationProperties["operation"] = "put-token";
            request.ApplicationProperties["type"] = "servicebus.windows.net:sastoken";
            request.ApplicationProperties["name"] = audience;
            await sender.SendAsync(request).WaitAsync(TimeSpan.FromSeconds(10));
            var response = await receiver.ReceiveAsync(TimeSpan.FromSeconds(10));
            Assert.NotNull(response);
            receiver.Accept(response);
            return (int)response.ApplicationProperties["status-code"];
        }
        finally
        {
            await sender.CloseAsync();
            await receiver.CloseAsync();
        }
    }

    private string ServiceToken(string policy = "service") =>
        SasToken.CreateForTimeToLive(Emulator.HostName, Emulator.Hub.Policies[policy].PrimaryKey, TimeSpan.FromMinutes(10), policy);

    [Fact]
    public async Task CloudToDevice_SentOverAmqpAfterCbs_ReachesTheMqttDevice()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("amqp");
        await device.SubscribeAsync($"devices/{device.DeviceId}/messages/devicebound/#");
        var connection = await ConnectAsync();
        try
        {
            var session = new Session(connection);
            Assert.Equal(200, await PutTokenAsync(session, $"amqps://{Emulator.HostName}/messages/devicebound", ServiceToken()));
            var sender = new SenderLink(session, "c2d", "/messages/devicebound");
            var message = new Message { BodySection = new Data { Binary = Encoding.UTF8.GetBytes("over amqp") } };
            message.Properties = new Properties { To = $"/devices/{device.DeviceId}/messages/devicebound", MessageId = "amqp-7", CorrelationId = "c-7" };
            message.ApplicationProperties = new ApplicationProperties();
            message.ApplicationProperties["color"] = "red";
            await sender.SendAsync(message).WaitAsync(TimeSpan.FromSeconds(10));

            var received = await device.ReceiveAsync($"devices/{device.DeviceId}/messages/devicebound/");
            Assert.Equal("over amqp", MqttTestDevice.Text(received));
            Assert.Contains("%24.mid=amqp-7", received.Topic, StringComparison.Ordinal);
            Assert.Contains("%24.cid=c-7", received.Topic, StringComparison.Ordinal);
            Assert.Contains("color=red", received.Topic, StringComparison.Ordinal);

            var unknown = new Message { BodySection = new Data { Binary = [1] }, Properties = new Properties { To = "/devices/no-such-device/messages/devicebound" } };
            var rejected = await Assert.ThrowsAsync<AmqpException>(() => sender.SendAsync(unknown).WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal((Symbol)ErrorCode.NotFound, rejected.Error.Condition);
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    [Fact]
    public async Task WithoutSasl_CbsForTheHubNameWithTheAmqpPort_AuthorizesCloudToDevice()
    {
        var (id, _) = fixture.CreateDevice("amqp-nosasl");
        var ownPort = $"{Emulator.HostName}:{Emulator.AmqpPort}";
        var otherPort = $"{Emulator.HostName}:{Emulator.AmqpPort + 1}";
        var policy = Emulator.Hub.Policies["service"];
        var connection = await ConnectAsync(sasl: false);
        var other = await ConnectAsync(sasl: false);
        try
        {
            // Two connections whose reply links both lack a target address: each answer goes back on its own connection.
            var otherSession = new Session(other);
            Assert.Equal(401, await PutTokenAsync(otherSession, otherPort,
                SasToken.CreateForTimeToLive(otherPort, policy.PrimaryKey, TimeSpan.FromMinutes(10), "service"), replyTarget: null));
            var session = new Session(connection);
            Assert.Equal(200, await PutTokenAsync(session, ownPort,
                SasToken.CreateForTimeToLive(ownPort, policy.PrimaryKey, TimeSpan.FromMinutes(10), "service"), replyTarget: null));

            var sender = new SenderLink(session, "c2d", "/messages/devicebound");
            var message = new Message { BodySection = new Data { Binary = "plain"u8.ToArray() } };
            message.Properties = new Properties { To = $"/devices/{Uri.EscapeDataString(id)}/messages/devicebound", MessageId = "plain-1" };
            await sender.SendAsync(message).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("plain-1", Assert.Single(Emulator.Hub.TakeDeliverable(id)).MessageId);

            var refused = new SenderLink(new Session(other), "c2d", "/messages/devicebound");
            await Assert.ThrowsAsync<AmqpException>(() => refused.SendAsync(message).WaitAsync(TimeSpan.FromSeconds(10)));
        }
        finally
        {
            await connection.CloseAsync();
            await other.CloseAsync();
        }
    }

    [Fact]
    public async Task CloudToDevice_OverAmqp_KeepsExpiryAckAndSystemProperties()
    {
        var (id, _) = fixture.CreateDevice("amqp-exp");
        var connection = await ConnectAsync();
        try
        {
            var session = new Session(connection);
            Assert.Equal(200, await PutTokenAsync(session, Emulator.HostName, ServiceToken()));
            var sender = new SenderLink(session, "c2d", "/messages/devicebound");
            var expiry = DateTime.UtcNow.AddMinutes(7);
            var message = new Message { BodySection = new Data { Binary = "{}"u8.ToArray() } };
            message.Properties = new Properties
            {
                To = $"/devices/{Uri.EscapeDataString(id)}/messages/devicebound", MessageId = "exp-1", CorrelationId = "c-1",
                ContentType = "application/json", ContentEncoding = "utf-8", AbsoluteExpiryTime = expiry,
            };
            message.ApplicationProperties = new ApplicationProperties();
            message.ApplicationProperties["iothub-ack"] = "negative";
            message.ApplicationProperties["zone"] = "b";
            await sender.SendAsync(message).WaitAsync(TimeSpan.FromSeconds(10));

            var queued = Assert.Single(Emulator.Hub.TakeDeliverable(id));
            Assert.Equal("exp-1", queued.MessageId);
            Assert.Equal("c-1", queued.CorrelationId);
            Assert.Equal("application/json", queued.ContentType);
            Assert.Equal("utf-8", queued.ContentEncoding);
            Assert.Equal("negative", queued.Ack);
            Assert.Equal("b", queued.Properties["zone"]);
            Assert.False(queued.Properties.ContainsKey("iothub-ack"));
            Assert.InRange(queued.ExpiryTimeUtc, expiry.AddSeconds(-1), expiry.AddSeconds(1));
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    [Fact]
    public async Task CloudToDevice_WithoutCbsToken_IsUnauthorized()
    {
        var connection = await ConnectAsync();
        try
        {
            var session = new Session(connection);
            var sender = new SenderLink(session, "c2d", "/messages/devicebound");
            var message = new Message { BodySection = new Data { Binary = [1] }, Properties = new Properties { To = "/devices/x/messages/devicebound" } };
            var error = await Assert.ThrowsAsync<AmqpException>(() => sender.SendAsync(message).WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal((Symbol)ErrorCode.UnauthorizedAccess, error.Error.Condition);
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    [Fact]
    public async Task Cbs_WithForgedOrDeviceOnlyToken_Answers401()
    {
        var connection = await ConnectAsync();
        try
        {
            var session = new Session(connection);
            var forged = SasToken.CreateForTimeToLive(Emulator.HostName, SharedAccessKeys.Generate(), TimeSpan.FromMinutes(10), "service");
            Assert.Equal(401, await PutTokenAsync(session, Emulator.HostName, forged));
            Assert.Equal(401, await PutTokenAsync(session, Emulator.HostName, ServiceToken("device")));
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    /// <summary>Attaches a receiver and returns the error the peer detached it with (null when it attached).</summary>
    private static async Task<Error?> RefusalAsync(ReceiverLink link)
    {
        var closed = new TaskCompletionSource<Error?>(TaskCreationOptions.RunContinuationsAsynchronously);
        link.Closed += (_, error) => closed.TrySetResult(error);
        if (link.IsClosed)
        {
            closed.TrySetResult(link.Error); // refused before the handler was added
        }

        link.SetCredit(1);
        var done = await Task.WhenAny(closed.Task, Task.Delay(TimeSpan.FromSeconds(10)));
        return done == closed.Task ? closed.Task.Result : null;
    }

    [Fact]
    public async Task Events_OnTheHub_RedirectToTheEventHubCompatibleEntity_WhichServesTheDevicePartition()
    {
        var startAfter = Emulator.Hub.Telemetry.NextSequenceNumber - 1;
        await using var device = await fixture.ConnectNewDeviceAsync("amqp");
        var connection = await ConnectAsync();
        try
        {
            var session = new Session(connection);
            Assert.Equal(200, await PutTokenAsync(session, $"{Emulator.HostName}/messages/events", ServiceToken()));
            var redirect = await RefusalAsync(new ReceiverLink(session, "events", new Source { Address = "messages/events/ConsumerGroups/$Default/Partitions/0" }, null));
            Assert.NotNull(redirect);
            Assert.Equal((Symbol)ErrorCode.LinkRedirect, redirect.Condition);
            Assert.Equal(Emulator.HostName, redirect.Info[new Symbol("hostname")]);
            Assert.Equal(Emulator.AmqpPort, redirect.Info[new Symbol("port")]);
            var address = (string)redirect.Info[new Symbol("address")];
            Assert.Equal($"amqps://{Emulator.HostName}:{Emulator.AmqpPort}/{Emulator.Hub.EventHubName}/ConsumerGroups/$Default/Partitions/0", address);

            // The Event Hub-compatible entity takes a token by the Event Hubs rule (the key's text keys the HMAC); $management
            // names the partitions; the device's partition has its message.
            var entityAudience = $"sb://{Emulator.HostName}/{Emulator.Hub.EventHubName}";
            Assert.Equal(200, await PutTokenAsync(session, entityAudience,
                EventHubsSas.Create(entityAudience, Emulator.Hub.Policies["service"].PrimaryKey, DateTimeOffset.UtcNow.AddMinutes(10), "service")));
            var management = new Message { ApplicationProperties = new ApplicationProperties() };
            management.ApplicationProperties["operation"] = "READ";
            management.ApplicationProperties["type"] = "com.microsoft:eventhub";
            management.ApplicationProperties["name"] = Emulator.Hub.EventHubName;
            var answer = await RequestAsync(session, "$management", management);
            Assert.Equal(200, answer.ApplicationProperties["status-code"]);
            Assert.Equal(["0", "1", "2", "3"], (string[])((Map)answer.Body)["partition_ids"]);

            var partition = Emulator.Hub.PartitionOf(device.DeviceId);
            var filters = new Map { [new Symbol("apache.org:selector-filter:string")] = new DescribedValue(new Symbol("apache.org:selector-filter:string"), $"amqp.annotation.x-opt-offset > '{startAfter}'") };
            var receiver = new ReceiverLink(session, "events-p", new Source { Address = $"{Emulator.Hub.EventHubName}/ConsumerGroups/$Default/Partitions/{partition}", FilterSet = filters }, null);
            var other = new ReceiverLink(session, "events-q", new Source { Address = $"{Emulator.Hub.EventHubName}/ConsumerGroups/$Default/Partitions/{(partition + 1) % 4}", FilterSet = filters }, null);
            await device.PublishAsync($"devices/{device.DeviceId}/messages/events/kind=amqp-test&%24.mid=t-1", "{\"v\":1}");

            Message? found = null;
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (found is null && DateTime.UtcNow < deadline)
            {
                var message = await receiver.ReceiveAsync(TimeSpan.FromSeconds(2));
                if (message is null)
                {
                    continue;
                }

                receiver.Accept(message);
                if ((string)message.MessageAnnotations[new Symbol("iothub-connection-device-id")] == device.DeviceId)
                {
                    found = message;
                }
            }

            Assert.NotNull(found);
            Assert.Equal("{\"v\":1}", Encoding.UTF8.GetString((byte[])found.Body));
            Assert.Equal("amqp-test", found.ApplicationProperties["kind"]);
            Assert.Equal("t-1", found.Properties.MessageId);
            Assert.Equal(partition.ToString(System.Globalization.CultureInfo.InvariantCulture), found.MessageAnnotations[new Symbol("x-opt-partition-id")]);
            Assert.IsType<DateTime>(found.MessageAnnotations[new Symbol("x-opt-enqueued-time")]);
            for (var m = await other.ReceiveAsync(TimeSpan.FromSeconds(1)); m is not null; m = await other.ReceiveAsync(TimeSpan.FromSeconds(1)))
            {
                other.Accept(m);
                Assert.NotEqual(device.DeviceId, (string)m.MessageAnnotations[new Symbol("iothub-connection-device-id")]);
            }

            var missing = await RefusalAsync(new ReceiverLink(session, "events-x", new Source { Address = $"{Emulator.Hub.EventHubName}/ConsumerGroups/$Default/Partitions/9" }, null));
            Assert.Equal((Symbol)ErrorCode.NotFound, missing?.Condition);
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    [Fact]
    public async Task Events_SequenceNumbersCountPerPartition_OffsetsAreTheHubWidePosition()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("pseq");
        await using var neighbour = await fixture.ConnectNewDeviceAsync("pseq");
        for (var i = 0; i < 3; i++)
        {
            await device.PublishAsync($"devices/{device.DeviceId}/messages/events/", $"{{\"i\":{i}}}");
            await neighbour.PublishAsync($"devices/{neighbour.DeviceId}/messages/events/", $"{{\"i\":{i}}}");
        }

        var connection = await ConnectAsync();
        try
        {
            var session = new Session(connection);
            Assert.Equal(200, await PutTokenAsync(session, $"{Emulator.HostName}/{Emulator.Hub.EventHubName}", ServiceToken()));
            var partition = Emulator.Hub.PartitionOf(device.DeviceId);
            var filters = new Map { [new Symbol("apache.org:selector-filter:string")] = new DescribedValue(new Symbol("apache.org:selector-filter:string"), "amqp.annotation.x-opt-offset > '-1'") };
            var receiver = new ReceiverLink(session, "events-all", new Source { Address = $"{Emulator.Hub.EventHubName}/ConsumerGroups/$Default/Partitions/{partition}", FilterSet = filters }, null);
            var received = new List<Message>();
            var mine = 0;
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (mine < 3 && DateTime.UtcNow < deadline)
            {
                var message = await receiver.ReceiveAsync(TimeSpan.FromSeconds(1));
                if (message is not null)
                {
                    receiver.Accept(message);
                    received.Add(message);
                    mine += (string)message.MessageAnnotations[new Symbol("iothub-connection-device-id")] == device.DeviceId ? 1 : 0;
                }
            }

            Assert.Equal(3, mine);
            var sequence = received.Select(m => (long)m.MessageAnnotations[new Symbol("x-opt-sequence-number")]).ToList();
            var offsets = received.Select(m => long.Parse((string)m.MessageAnnotations[new Symbol("x-opt-offset")], System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(Enumerable.Range(1, received.Count).Select(n => (long)n), sequence);
            Assert.Equal(offsets.Order(), offsets);
            Assert.Equal(offsets.Count, offsets.Distinct().Count());
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    /// <summary>
    /// AMQP flow control (AMQP 1.0 section 2.6.7): a flow carries the receiver's delivery-count and link-credit, so credit a
    /// receiver grants while it still holds some adds to it, and a flow that grants nothing new takes nothing away. The
    /// Event Hubs clients grant credit so as they consume; an endpoint that took each flow's change for the whole credit
    /// stopped sending while the receiver still held credit, and the read stalled.
    /// </summary>
    [Fact]
    public async Task Events_CreditGrantedWhileSomeIsLeft_AddsUp_AndAFlowWithNothingNewKeepsIt()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("credit");
        var connection = await ConnectAsync();
        try
        {
            var session = new Session(connection);
            Assert.Equal(200, await PutTokenAsync(session, $"{Emulator.HostName}/{Emulator.Hub.EventHubName}", ServiceToken()));
            var partition = Emulator.Hub.PartitionOf(device.DeviceId);
            var latest = new Map { [new Symbol("apache.org:selector-filter:string")] = new DescribedValue(new Symbol("apache.org:selector-filter:string"), "amqp.annotation.x-opt-offset > '@latest'") };
            var node = $"{Emulator.Hub.EventHubName}/ConsumerGroups/credit-test/Partitions/";
            var attached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var receiver = new ReceiverLink(session, "credit-p", new Source { Address = node + partition, FilterSet = latest }, (_, _) => attached.TrySetResult());
            await attached.Task.WaitAsync(TimeSpan.FromMinutes(1));

            // Flows (delivery-count 0): link-credit 10, then 20 (10 more while the first 10 are still held), then 20 again.
            receiver.SetCredit(10, CreditMode.Manual);
            receiver.SetCredit(10, CreditMode.Manual);
            receiver.SetCredit(0, CreditMode.Manual);

            // Frames are handled in order: once a link attached after the flows is answered, the flows were taken.
            var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var marker = new ReceiverLink(session, "credit-q", new Source { Address = node + ((partition + 1) % 4), FilterSet = latest }, (_, _) => answered.TrySetResult());
            await answered.Task.WaitAsync(TimeSpan.FromMinutes(1));

            for (var i = 0; i < 25; i++)
            {
                await device.PublishAsync($"devices/{device.DeviceId}/messages/events/", $"{{\"i\":{i}}}");
            }

            var received = new List<long>();
            for (var i = 0; i < 20; i++)
            {
                var message = await receiver.ReceiveAsync(TimeSpan.FromMinutes(1)); // a guard against a hang only
                Assert.True(message is not null, $"The endpoint stopped after {received.Count} of the 20 messages the receiver's credit allows.");
                received.Add((long)message.MessageAnnotations[new Symbol("x-opt-sequence-number")]);
            }

            Assert.Equal(Enumerable.Range(0, 20).Select(i => received[0] + i), received);
            await marker.CloseAsync();
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    [Fact]
    public void TelemetryLog_NumbersEachPartitionFrom1_AndARestoredLogGoesOn()
    {
        static TelemetryMessage Message(long seq, string device) => new()
        {
            SequenceNumber = seq, DeviceId = device, EnqueuedTimeUtc = DateTime.UtcNow, Body = [], Properties = new Dictionary<string, string>(), SystemProperties = new Dictionary<string, string>(),
        };
        static int PartitionOf(string device) => device == "a" ? 0 : 1;
        var log = new TelemetryLog(100, PartitionOf);
        var appended = new[] { "a", "b", "a", "a", "b" }.Select(d => log.Append(seq => Message(seq, d))).ToList();

        Assert.Equal([1L, 2, 3, 4, 5], appended.Select(m => m.SequenceNumber));
        Assert.Equal([1L, 1, 2, 3, 2], appended.Select(m => m.PartitionSequenceNumber));

        var restored = new TelemetryLog(100, PartitionOf);
        restored.Restore(appended);
        Assert.Equal(4, restored.Append(seq => Message(seq, "a")).PartitionSequenceNumber);
        Assert.Equal(3, restored.Append(seq => Message(seq, "b")).PartitionSequenceNumber);

        var unnumbered = new TelemetryLog(100, PartitionOf);
        unnumbered.Restore([Message(7, "b"), Message(8, "a"), Message(9, "b")]);
        Assert.Equal(3, unnumbered.Append(seq => Message(seq, "b")).PartitionSequenceNumber);
    }

    [Fact]
    public async Task Feedback_IsDeliveredUntilAReaderAcceptsIt_ThenGone()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("fb");
        await device.SubscribeAsync($"devices/{device.DeviceId}/messages/devicebound/#");
        var connection = await ConnectAsync();
        try
        {
            var session = new Session(connection);
            Assert.Equal(200, await PutTokenAsync(session, Emulator.HostName, ServiceToken()));
            var sender = new SenderLink(session, "c2d", "/messages/devicebound");
            var message = new Message { BodySection = new Data { Binary = [1] } };
            message.Properties = new Properties { To = $"/devices/{device.DeviceId}/messages/devicebound", MessageId = device.DeviceId + "-ack" };
            message.ApplicationProperties = new ApplicationProperties();
            message.ApplicationProperties["iothub-ack"] = "positive";
            await sender.SendAsync(message).WaitAsync(TimeSpan.FromSeconds(10));
            await device.ReceiveAsync($"devices/{device.DeviceId}/messages/devicebound/"); // MQTTnet acknowledges it: Success

            async Task<Message?> FindAsync(ReceiverLink link)
            {
                var deadline = DateTime.UtcNow.AddSeconds(10);
                while (DateTime.UtcNow < deadline)
                {
                    var m = await link.ReceiveAsync(TimeSpan.FromSeconds(1));
                    if (m is not null && Encoding.UTF8.GetString((byte[])m.Body).Contains(device.DeviceId + "-ack", StringComparison.Ordinal))
                    {
                        return m;
                    }

                    if (m is not null)
                    {
                        link.Release(m);
                    }
                }

                return null;
            }

            var first = new ReceiverLink(session, "feedback-1", "/messages/servicebound/feedback");
            var released = await FindAsync(first);
            Assert.NotNull(released);
            Assert.Equal("application/vnd.microsoft.iothub.feedback.json", released.Properties.ContentType);
            first.Release(released);
            await first.CloseAsync();

            var second = new ReceiverLink(session, "feedback-2", "/messages/serviceBound/feedback");
            var accepted = await FindAsync(second);
            Assert.NotNull(accepted);
            var record = System.Text.Json.Nodes.JsonNode.Parse((byte[])accepted.Body)!.AsArray().Single(r => (string?)r!["originalMessageId"] == device.DeviceId + "-ack")!;
            Assert.Equal("Success", (string?)record["statusCode"]);
            Assert.Equal(device.DeviceId, (string?)record["deviceId"]);
            second.Accept(accepted);
            await second.CloseAsync();

            var third = new ReceiverLink(session, "feedback-3", "/messages/servicebound/feedback");
            Assert.Null(await FindAsync(third));
        }
        finally
        {
            await connection.CloseAsync();
        }
    }

    private static async Task<Message> RequestAsync(Session session, string node, Message request)
    {
        var sender = new SenderLink(session, "mgmt-sender", node);
        var receiver = new ReceiverLink(session, "mgmt-receiver", new Attach { Source = new Source { Address = node }, Target = new Target { Address = "mgmt-reply" } }, null);
        receiver.SetCredit(1);
        try
        {
            request.Properties = new Properties { MessageId = "mgmt-1", ReplyTo = "mgmt-reply" };
            await sender.SendAsync(request).WaitAsync(TimeSpan.FromSeconds(10));
            var response = await receiver.ReceiveAsync(TimeSpan.FromSeconds(10));
            Assert.NotNull(response);
            receiver.Accept(response);
            return response;
        }
        finally
        {
            await sender.CloseAsync();
            await receiver.CloseAsync();
        }
    }
}
