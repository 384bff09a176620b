using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Core.Tests.Mqtt;
using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Core.Tests.Service;

/// <summary>The service REST client against the emulator's HTTPS API.</summary>
public sealed class ServiceClientTests(EmulatorFixture hub) : IClassFixture<EmulatorFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal static IoTHubServiceClient NewClient(IoTHubMqtt.Emulator.IoTHubEmulator emulator, Func<IoTHubServiceOptions, IoTHubServiceOptions>? configure = null, string? connectionString = null)
    {
        var options = new IoTHubServiceOptions
        {
            ConnectionString = connectionString ?? emulator.OwnerConnectionString,
            Port = emulator.HttpsPort,
            CaCertificatePath = emulator.CaCertificatePath,
            IsEmulator = true,
        };
        return new IoTHubServiceClient(configure?.Invoke(options) ?? options);
    }

    [Fact]
    public async Task CreateGetDelete_RoundTrip_ReturnsKeysAndAWorkingConnectionString()
    {
        using var service = NewClient(hub.Emulator);
        var id = hub.NewDeviceId("svc");

        var created = await service.CreateDeviceAsync(new DeviceSpec { DeviceId = id }, Ct);
        var read = await service.GetDeviceAsync(id, Ct);

        Assert.Equal(id, created.DeviceId);
        Assert.NotNull(created.PrimaryKey);
        Assert.Equal(created.PrimaryKey, read.PrimaryKey);
        Assert.Equal(created.ETag, read.ETag);
        var parsed = IoTHubConnectionString.Parse(created.ConnectionString);
        Assert.Equal(id, parsed.DeviceId);
        Assert.DoesNotContain(created.PrimaryKey!, created.ToString(), StringComparison.Ordinal);
        await using (var device = HubProbe.NewClient(hub.Emulator, id, parsed.SharedAccessKey!))
        {
            await device.ConnectAsync(Ct);
        }

        await service.DeleteDeviceAsync(id, read.ETag, Ct);
        var gone = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.GetDeviceAsync(id, Ct));
        Assert.Equal("DeviceNotFound", gone.ErrorId);
    }

    [Fact]
    public async Task Create_WithGivenKeysAndDisabledStatus_HubKeepsThem()
    {
        using var service = NewClient(hub.Emulator);
        var key = SharedAccessKeys.Generate();
        var created = await service.CreateDeviceAsync(new DeviceSpec { DeviceId = hub.NewDeviceId(), PrimaryKey = key, Status = "disabled" }, Ct);
        Assert.Equal(key, created.PrimaryKey);
        Assert.Equal("disabled", created.Status);
    }

    [Fact]
    public async Task Create_Twice_IsDeviceAlreadyExists_AndStaleETagDelete_IsPreconditionFailed()
    {
        using var service = NewClient(hub.Emulator);
        var id = hub.NewDeviceId();
        var first = await service.CreateDeviceAsync(new DeviceSpec { DeviceId = id }, Ct);

        var again = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.CreateDeviceAsync(new DeviceSpec { DeviceId = id }, Ct));
        Assert.Equal("DeviceAlreadyExists", again.ErrorId);
        Assert.Equal(IoTHubErrorKind.AlreadyExists, again.Kind);

        await service.UpdateDeviceAsync(new DeviceSpec { DeviceId = id, Status = "disabled" }, first.ETag, Ct);
        var stale = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.DeleteDeviceAsync(id, first.ETag, Ct));
        Assert.Equal("PreconditionFailed", stale.ErrorId);
        Assert.Equal("disabled", (await service.GetDeviceAsync(id, Ct)).Status);
    }

    [Fact]
    public async Task BadDeviceId_IsInvalidDeviceId_BeforeAnyRequest()
    {
        using var service = NewClient(hub.Emulator);
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.CreateDeviceAsync(new DeviceSpec { DeviceId = "has space" }, Ct));
        Assert.Equal("InvalidDeviceId", error.ErrorId);
    }

    [Fact]
    public async Task QueryAllDevices_FollowsContinuationAcrossPages()
    {
        await using var own = EmulatorFixture.Start(o => o.ServiceRequestsPerSecond = 0);
        using var service = NewClient(own.Emulator);
        for (var i = 0; i < 25; i++)
        {
            own.Emulator.CreateDevice($"q-{i:D2}");
        }

        var first = await service.QueryDevicesAsync(null, 10, Ct);
        var all = new List<ServiceDevice>();
        await foreach (var device in service.QueryAllDevicesAsync(10, Ct))
        {
            all.Add(device);
        }

        Assert.Equal(10, first.Devices.Count);
        Assert.NotNull(first.Continuation);
        Assert.Equal(Enumerable.Range(0, 25).Select(i => $"q-{i:D2}"), all.Select(d => d.DeviceId).Order(StringComparer.Ordinal));
        Assert.All(all, d => Assert.NotNull(d.ETag));
    }

    [Fact]
    public async Task WrongPolicyKey_IsIoTHubUnauthorized_WithNoKeyInTheMessage()
    {
        var wrong = $"HostName={hub.Emulator.HostName};SharedAccessKeyName=iothubowner;SharedAccessKey={SharedAccessKeys.Generate()}";
        using var service = NewClient(hub.Emulator, connectionString: wrong);
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.GetDeviceAsync("anything", Ct));
        Assert.Equal("IoTHubUnauthorized", error.ErrorId);
        Assert.Equal(IoTHubErrorKind.Unauthorized, error.Kind);
        Assert.DoesNotContain(wrong.Split("SharedAccessKey=")[1], error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExpiredPolicyToken_IsIoTHubUnauthorized()
    {
        var owner = IoTHubConnectionString.Parse(hub.Emulator.OwnerConnectionString);
        var expired = SasToken.CreateAt(owner.HostName, SharedAccessKeys.Decode(owner.SharedAccessKey), DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeSeconds(), "iothubowner");
        using var service = NewClient(hub.Emulator, connectionString: $"HostName={owner.HostName};SharedAccessKeyName=iothubowner;SharedAccessSignature={expired}");
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.GetDeviceAsync("anything", Ct));
        Assert.Equal("IoTHubUnauthorized", error.ErrorId);
    }

    [Fact]
    public void DeviceConnectionString_IsRefused_AsServiceConnectionStringRequired()
    {
        var error = Assert.Throws<IoTHubMqttException>(() => NewClient(hub.Emulator, connectionString: $"HostName=h.example;DeviceId=d;SharedAccessKey={SharedAccessKeys.Generate()}"));
        Assert.Equal("ServiceConnectionStringRequired", error.ErrorId);
    }

    [Fact]
    public async Task PolicyToken_IsSignedAgainWhen15PercentOfItsLifeIsLeft_AndTheNextRequestUsesIt()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var service = NewClient(hub.Emulator, o => new IoTHubServiceOptions
        {
            ConnectionString = o.ConnectionString, Port = o.Port, CaCertificatePath = o.CaCertificatePath, TokenTimeToLive = TimeSpan.FromHours(1), TimeProvider = clock,
        });
        var id = hub.NewDeviceId();
        await service.CreateDeviceAsync(new DeviceSpec { DeviceId = id }, Ct);
        var firstExpiry = service.TokenExpiresAt;
        Assert.Equal(clock.GetUtcNow() + TimeSpan.FromHours(1), firstExpiry);

        clock.Advance(TimeSpan.FromMinutes(50)); // 10 minutes of the hour left: still more than 15 %
        Assert.Equal(id, (await service.GetDeviceAsync(id, Ct)).DeviceId);
        Assert.Equal(0, service.TokenRenewalCount);
        Assert.Equal(firstExpiry, service.TokenExpiresAt);

        clock.Advance(TimeSpan.FromMinutes(2)); // 8 minutes left: under 15 %, so the next request signs a new token
        Assert.Equal(id, (await service.GetDeviceAsync(id, Ct)).DeviceId);
        Assert.Equal(1, service.TokenRenewalCount);
        Assert.Equal(clock.GetUtcNow() + TimeSpan.FromHours(1), service.TokenExpiresAt);
    }

    [Fact]
    public async Task Throttled_429_IsRetriedAfterRetryAfter_AndEveryRequestSucceeds()
    {
        await using var limited = EmulatorFixture.Start(o => o.ServiceRequestsPerSecond = 5);
        using var service = NewClient(limited.Emulator);

        var created = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => service.CreateDeviceAsync(new DeviceSpec { DeviceId = $"t-{i}" }, Ct)));

        Assert.Equal(12, created.Length);
        Assert.True(service.RetryCount > 0, "the emulator should have throttled some requests");
    }

    [Fact]
    public async Task Throttled_PastMaxThrottledWait_IsIoTHubThrottled()
    {
        await using var limited = EmulatorFixture.Start(o => o.ServiceRequestsPerSecond = 1);
        using var service = NewClient(limited.Emulator, o => new IoTHubServiceOptions
        {
            ConnectionString = o.ConnectionString, Port = o.Port, CaCertificatePath = o.CaCertificatePath, MaxThrottledWait = TimeSpan.Zero,
        });

        var errors = new List<IoTHubMqttException>();
        for (var i = 0; i < 4; i++)
        {
            try
            {
                await service.QueryDevicesAsync(null, 10, Ct);
            }
            catch (IoTHubMqttException ex)
            {
                errors.Add(ex);
            }
        }

        Assert.Contains(errors, e => e.ErrorId == "IoTHubThrottled" && e.Kind == IoTHubErrorKind.Throttled);
    }

    [Fact]
    public async Task NoServerOnThePort_IsRetriedThenIoTHubConnectionFailed()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var log = new List<string>();
        using var service = NewClient(hub.Emulator, o => new IoTHubServiceOptions
        {
            ConnectionString = o.ConnectionString, Port = port, CaCertificatePath = o.CaCertificatePath, MaxRetries = 2,
            RetryInitialDelay = TimeSpan.FromMilliseconds(10), RetryMaxDelay = TimeSpan.FromMilliseconds(20), Log = line => { lock (log) { log.Add(line); } },
        });

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.GetDeviceAsync("d", Ct));

        Assert.Equal("IoTHubConnectionFailed", error.ErrorId);
        Assert.Equal(2, service.RetryCount);
        Assert.Equal(2, log.Count);
    }

    [Fact]
    public async Task InvokeMethod_OnConnectedDevice_ReturnsItsStatusAndPayload_AndOfflineIsDeviceNotOnline()
    {
        using var service = NewClient(hub.Emulator);
        var (id, key) = hub.CreateDevice("m");
        await using var device = HubProbe.NewClient(hub.Emulator, id, key);
        await device.ConnectAsync(Ct);
        device.RegisterMethod("reboot");
        var answer = Task.Run(async () =>
        {
            var request = await device.ReceiveMethodRequestAsync(TimeSpan.FromSeconds(10), Ct);
            await device.RespondToMethodAsync(request!, 202, Encoding.UTF8.GetBytes("{\"echo\":" + Encoding.UTF8.GetString(request!.Payload) + "}"), Ct);
        }, Ct);

        var result = await service.InvokeMethodAsync(id, "reboot", new JsonObject { ["delay"] = 3 }, TimeSpan.FromSeconds(10), TimeSpan.Zero, Ct);
        await answer;

        Assert.Equal(202, result.Status);
        Assert.Equal(3, result.Payload!["echo"]!["delay"]!.GetValue<int>());

        var (offline, _) = hub.CreateDevice("off");
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.InvokeMethodAsync(offline, "reboot", null, TimeSpan.FromSeconds(5), TimeSpan.Zero, Ct));
        Assert.Equal("DeviceNotOnline", error.ErrorId);
        var unknown = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.InvokeMethodAsync("no-such-device", "reboot", null, TimeSpan.FromSeconds(5), TimeSpan.Zero, Ct));
        Assert.Equal("DeviceNotFound", unknown.ErrorId);
    }

    [Fact]
    public async Task UpdateDesired_WithETag_ThenStaleETag_IsPreconditionFailed()
    {
        using var service = NewClient(hub.Emulator);
        var (id, _) = hub.CreateDevice("tw");
        var twin = await service.GetTwinAsync(id, Ct);

        var patched = await service.UpdateDesiredPropertiesAsync(id, new JsonObject { ["interval"] = 5 }, twin.ETag, Ct);
        var stale = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.UpdateDesiredPropertiesAsync(id, new JsonObject { ["interval"] = 6 }, twin.ETag, Ct));

        Assert.Equal(5, patched.Desired["interval"]!.GetValue<int>());
        Assert.True(patched.DesiredVersion > twin.DesiredVersion);
        Assert.Equal("PreconditionFailed", stale.ErrorId);
    }

    [Fact]
    public async Task UpdateTags_MergesIntoTheTwin()
    {
        using var service = NewClient(hub.Emulator);
        var (id, _) = hub.CreateDevice("tags");

        await service.UpdateTagsAsync(id, new JsonObject { ["site"] = "north", ["floor"] = 2 }, null, Ct);
        var twin = await service.UpdateTagsAsync(id, new JsonObject { ["floor"] = null, ["line"] = "a" }, null, Ct);

        Assert.Equal("north", twin.Tags!["site"]!.GetValue<string>());
        Assert.Equal("a", twin.Tags["line"]!.GetValue<string>());
        Assert.False(twin.Tags.ContainsKey("floor"));
    }

    [Fact]
    public async Task CloudToDevice_OverAmqp_ArrivesWithPropertiesAndExpiry_AndFeedbackIsReadOnce()
    {
        using var service = NewClient(hub.Emulator);
        var (id, key) = hub.CreateDevice("c2d");
        await using var device = HubProbe.NewClient(hub.Emulator, id, key);
        await device.ConnectAsync(Ct);
        var expiry = DateTimeOffset.UtcNow.AddMinutes(5);

        var receipt = await service.SendCloudToDeviceAsync(id, new CloudMessage
        {
            Body = "hi"u8.ToArray(), MessageId = "m-7", CorrelationId = "c-7", Ack = "full", Expiry = expiry,
            Properties = new Dictionary<string, string> { ["kind"] = "greeting" },
        }, Ct);
        var received = await device.ReceiveCloudToDeviceAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.NotNull(received);
        await received.CompleteAsync(Ct);
        var unknown = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.SendCloudToDeviceAsync("no-such-device", new CloudMessage { Body = [1] }, Ct));

        Assert.Equal("m-7", receipt.MessageId);
        Assert.Equal("hi", received.BodyText);
        Assert.Equal("m-7", received.MessageId);
        Assert.Equal("c-7", received.CorrelationId);
        Assert.Equal("greeting", received.Properties["kind"]);
        Assert.NotNull(received.ExpiryTime);
        Assert.InRange(received.ExpiryTime.Value, expiry.AddSeconds(-1), expiry.AddSeconds(1));
        Assert.Equal("DeviceNotFound", unknown.ErrorId);

        var feedback = await ReadFeedbackAsync(service, "m-7", TimeSpan.FromSeconds(10));
        var record = Assert.Single(feedback, r => r.OriginalMessageId == "m-7");
        Assert.Equal("Success", record.StatusCode);
        Assert.Equal(id, record.DeviceId);
        Assert.DoesNotContain(await ReadFeedbackAsync(service, "m-7", TimeSpan.FromSeconds(1.5)), r => r.OriginalMessageId == "m-7");
    }

    [Fact]
    public async Task Feedback_AbandonedByOneReader_IsDeliveredToTheNext()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow); // the hub's
        await using var fx = EmulatorFixture.Start(o => o.TimeProvider = clock);
        using var service = NewClient(fx.Emulator);
        var (id, _) = fx.CreateDevice("aband");
        await service.SendCloudToDeviceAsync(id, new CloudMessage { Body = "a"u8.ToArray(), MessageId = id + "-x", Ack = "negative", Expiry = clock.GetUtcNow().AddSeconds(30) }, Ct);
        clock.Advance(TimeSpan.FromSeconds(31));
        await service.SendCloudToDeviceAsync(id, new CloudMessage { Body = "b"u8.ToArray() }, Ct); // the hub drops expired messages when the queue is next touched

        await using (var first = await service.OpenCloudMessageFeedbackReaderAsync(Ct))
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            CloudMessageFeedbackBatch? batch = null;
            while (DateTime.UtcNow < deadline && batch?.Records.Any(r => r.OriginalMessageId == id + "-x") != true)
            {
                batch = await first.ReceiveAsync(TimeSpan.FromSeconds(1), Ct);
                if (batch is not null && batch.Records.All(r => r.OriginalMessageId != id + "-x"))
                {
                    first.Abandon(batch);
                }
            }

            Assert.NotNull(batch);
            first.Abandon(batch);
        }

        var again = await ReadFeedbackAsync(service, id + "-x", TimeSpan.FromSeconds(10));
        Assert.Contains(again, r => r.OriginalMessageId == id + "-x" && r.StatusCode == "Expired");
    }

    [Fact]
    public async Task CloudMessage_ExpiredBeforeDelivery_IsExpiredFeedback_OnlyWhenNegativeFeedbackWasAsked()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow); // the hub's
        await using var fx = EmulatorFixture.Start(o => o.TimeProvider = clock);
        using var service = NewClient(fx.Emulator);
        var (id, _) = fx.CreateDevice("exp");
        var soon = clock.GetUtcNow().AddSeconds(30);
        await service.SendCloudToDeviceAsync(id, new CloudMessage { Body = "a"u8.ToArray(), MessageId = id + "-neg", Ack = "negative", Expiry = soon }, Ct);
        await service.SendCloudToDeviceAsync(id, new CloudMessage { Body = "b"u8.ToArray(), MessageId = id + "-pos", Ack = "positive", Expiry = soon }, Ct);
        clock.Advance(TimeSpan.FromSeconds(31));

        // The hub drops expired messages when the device's queue is next touched.
        await service.SendCloudToDeviceAsync(id, new CloudMessage { Body = "c"u8.ToArray() }, Ct);
        var feedback = await ReadFeedbackAsync(service, id + "-neg", TimeSpan.FromSeconds(10));

        Assert.Contains(feedback, r => r.OriginalMessageId == id + "-neg" && r.StatusCode == "Expired");
        Assert.DoesNotContain(feedback, r => r.OriginalMessageId == id + "-pos");
    }

    /// <summary>Completes every feedback batch until one names <paramref name="messageId"/> or the time is up; returns the records read.</summary>
    private static async Task<List<CloudMessageFeedback>> ReadFeedbackAsync(IoTHubServiceClient service, string messageId, TimeSpan within)
    {
        var records = new List<CloudMessageFeedback>();
        await using var reader = await service.OpenCloudMessageFeedbackReaderAsync(Ct);
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline && !records.Any(r => r.OriginalMessageId == messageId))
        {
            if (await reader.ReceiveAsync(TimeSpan.FromMilliseconds(500), Ct) is { } batch)
            {
                reader.Complete(batch);
                records.AddRange(batch.Records);
            }
        }

        return records;
    }

    [Fact]
    public async Task Telemetry_ReadThroughTheRedirect_FromEveryPartition_WithPropertiesAndEnqueuedTime()
    {
        using var service = NewClient(hub.Emulator);
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        var devices = new List<(string Id, IoTHubMqtt.Core.Mqtt.IoTHubDeviceClient Client)>();
        try
        {
            for (var i = 0; i < 6; i++)
            {
                var (id, key) = hub.CreateDevice("tel");
                var client = HubProbe.NewClient(hub.Emulator, id, key);
                devices.Add((id, client));
                await client.ConnectAsync(Ct);
                var message = IoTHubMqtt.Core.Mqtt.TelemetryMessage.FromText($"{{\"n\":{i}}}", "application/json");
                message.Properties.Add(new("kind", "count"));
                await client.SendTelemetryAsync(message, Ct);
            }

            var ids = devices.Select(d => d.Id).ToHashSet();
            await using var reader = await service.OpenTelemetryReaderAsync(new TelemetryReadOptions { EnqueuedAfter = before }, Ct);
            var events = new List<TelemetryEvent>();
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (DateTime.UtcNow < deadline && events.Count(e => ids.Contains(e.DeviceId)) < ids.Count)
            {
                events.AddRange(await reader.ReadAsync(100, TimeSpan.FromSeconds(1), Ct));
            }

            var mine = events.Where(e => ids.Contains(e.DeviceId)).ToList();
            Assert.Equal(ids.Count, mine.Count);
            Assert.Equal(["0", "1", "2", "3"], reader.PartitionIds); // the emulator's default four
            Assert.All(mine, e =>
            {
                Assert.Equal("count", e.Properties["kind"]);
                Assert.StartsWith("{\"n\":", Encoding.UTF8.GetString(e.Body), StringComparison.Ordinal);
                Assert.InRange(e.EnqueuedTime, before, DateTimeOffset.UtcNow.AddSeconds(1));
                Assert.Equal("application/json", e.SystemProperties["content-type"]);
                Assert.Contains(e.PartitionId, reader.PartitionIds);
            });
            Assert.True(mine.Select(e => e.PartitionId).Distinct().Count() > 1, "six devices spread over more than one partition");

            await using var later = await service.OpenTelemetryReaderAsync(new TelemetryReadOptions { EnqueuedAfter = DateTimeOffset.UtcNow, DeviceId = devices[0].Id }, Ct);
            Assert.Empty(await later.ReadAsync(10, TimeSpan.FromSeconds(1), Ct));
        }
        finally
        {
            foreach (var (_, client) in devices)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task CloudToDevice_ToAFullQueue_IsCloudMessageQueueFull_AndTooLargeIsMessageTooLarge()
    {
        using var service = NewClient(hub.Emulator);
        var (id, _) = hub.CreateDevice("full");
        for (var i = 0; i < 50; i++)
        {
            await service.SendCloudToDeviceAsync(id, new CloudMessage { Body = [(byte)i] }, Ct);
        }

        var full = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.SendCloudToDeviceAsync(id, new CloudMessage { Body = [51] }, Ct));
        var large = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.SendCloudToDeviceAsync(hub.CreateDevice("large").DeviceId, new CloudMessage { Body = new byte[70_000] }, Ct));

        Assert.Equal("CloudMessageQueueFull", full.ErrorId);
        Assert.Equal("MessageTooLarge", large.ErrorId);
    }

    [Fact]
    public async Task Amqp_WithAWrongPolicyKey_IsIoTHubUnauthorized()
    {
        var wrong = $"HostName={hub.Emulator.HostName};SharedAccessKeyName=iothubowner;SharedAccessKey={SharedAccessKeys.Generate()}";
        using var service = NewClient(hub.Emulator, o => new IoTHubServiceOptions
        {
            ConnectionString = o.ConnectionString, Port = o.Port, CaCertificatePath = o.CaCertificatePath, AmqpPort = hub.Emulator.AmqpPort, MaxRetries = 0,
        }, wrong);

        var send = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.SendCloudToDeviceAsync("d", new CloudMessage { Body = [] }, Ct));
        var read = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.OpenTelemetryReaderAsync(null, Ct));
        var feedback = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.OpenCloudMessageFeedbackReaderAsync(Ct));

        Assert.Equal("IoTHubUnauthorized", send.ErrorId);
        Assert.Equal("IoTHubUnauthorized", read.ErrorId);
        Assert.Equal("IoTHubUnauthorized", feedback.ErrorId);
        Assert.Contains("401", send.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HubErrorBody_IsParsedIntoCodeAndMessage()
    {
        var (code, message) = ServiceErrors.Parse("{\"Message\":\"ErrorCode:DeviceNotFound;Device x not registered.\",\"ExceptionMessage\":\"Tracking ID:1\"}");
        Assert.Equal("DeviceNotFound", code);
        Assert.Equal("Device x not registered.", message);
        var error = ServiceErrors.FromResponse(HttpStatusCode.NotFound, null, "{\"Message\":\"ErrorCode:DeviceNotOnline;Timed out\"}", "d", "Invoke method");
        Assert.Equal("DeviceNotOnline", error.ErrorId);
    }
}
