using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Emulator.Tiers;
using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Tests.Fleet;

/// <summary>An emulated tier's throttles, on a fake clock: the hub's 429 answers with Retry-After, and what basic tiers lack.</summary>
public sealed class TierThrottlingTests
{
    private static JsonArray Creates(int count, string prefix) =>
        new(Enumerable.Range(0, count).Select(i => (JsonNode)new JsonObject { ["id"] = $"{prefix}-{i:D3}-{Guid.NewGuid().ToString("N")[..6]}", ["importMode"] = "create" }).ToArray());

    private static (EmulatorFixture Hub, FakeTimeProvider Clock) Start(IoTHubTier tier, int units = 1)
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        return (EmulatorFixture.Start(o => { o.Tier = tier; o.Units = units; o.TimeProvider = clock; }), clock);
    }

    [Fact]
    public async Task S1OneUnit_Registry_100DevicesAMinute_BulkCountsEachDevice_429WithRetryAfterUntilTheyFit()
    {
        var (hub, clock) = Start(IoTHubTier.S1);
        await using var _ = hub;

        var first = await hub.Service.SendAsync(HttpMethod.Post, "devices", Creates(100, "s1a"));
        var second = Creates(100, "s1b");
        var refused = await hub.Service.SendAsync(HttpMethod.Post, "devices", second);
        clock.Advance(TimeSpan.FromSeconds(59));
        var stillRefused = await hub.Service.SendAsync(HttpMethod.Post, "devices", second);
        clock.Advance(TimeSpan.FromSeconds(1));
        var accepted = await hub.Service.SendAsync(HttpMethod.Post, "devices", second);

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.Status);
        Assert.Equal("ThrottlingException", refused.Header("iothub-errorcode"));
        Assert.Equal(429001, refused.Json!["errorCode"]!.GetValue<int>());
        Assert.Equal("60", refused.Header("Retry-After"));
        Assert.Equal("1", stillRefused.Header("Retry-After"));
        Assert.Equal(HttpStatusCode.OK, accepted.Status);
        Assert.True(accepted.Json!["isSuccessful"]!.GetValue<bool>());
        Assert.Equal(200, hub.Emulator.Hub.DeviceCount);
    }

    [Fact]
    public async Task S1TwoUnits_Registry_200AMinute_AndSingleCallsCountToo()
    {
        var (hub, clock) = Start(IoTHubTier.S1, units: 2);
        await using var _ = hub;

        var a = await hub.Service.SendAsync(HttpMethod.Post, "devices", Creates(100, "u2a"));
        var b = await hub.Service.SendAsync(HttpMethod.Post, "devices", Creates(99, "u2b"));
        var get = await hub.Service.SendAsync(HttpMethod.Get, "devices/nobody");
        var refused = await hub.Service.SendAsync(HttpMethod.Get, "devices/nobody");
        clock.Advance(TimeSpan.FromSeconds(1));
        var afterASecond = await hub.Service.SendAsync(HttpMethod.Get, "devices/nobody");

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.NotFound, HttpStatusCode.TooManyRequests, HttpStatusCode.NotFound],
            new[] { a.Status, b.Status, get.Status, refused.Status, afterASecond.Status });
    }

    [Fact]
    public async Task S1_Queries_20AMinute()
    {
        var (hub, _) = Start(IoTHubTier.S1);
        await using var __ = hub;
        var query = new JsonObject { ["query"] = "SELECT * FROM devices" };

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 21; i++)
        {
            statuses.Add((await hub.Service.SendAsync(HttpMethod.Post, "devices/query", query)).Status);
        }

        Assert.All(statuses.Take(20), s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[20]);
    }

    [Fact]
    public async Task BasicTier_TwinsMethodsAndCloudMessages_Are403OperationNotAvailableInCurrentTier_RegistryWorks()
    {
        var (hub, _) = Start(IoTHubTier.B1);
        await using var __ = hub;
        var (id, _) = hub.CreateDevice("basic");

        var twin = await hub.Service.SendAsync(HttpMethod.Get, $"twins/{id}");
        var method = await hub.Service.SendAsync(HttpMethod.Post, $"twins/{id}/methods", new JsonObject { ["methodName"] = "m", ["responseTimeoutInSeconds"] = 5 });
        var c2d = await hub.Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: "hi"u8.ToArray(), addApiVersion: false);
        var device = await hub.Service.SendAsync(HttpMethod.Get, $"devices/{id}");

        foreach (var answer in new[] { twin, method, c2d })
        {
            Assert.Equal(HttpStatusCode.Forbidden, answer.Status);
            Assert.Equal(403010, answer.Json!["errorCode"]!.GetValue<int>());
            Assert.Equal("OperationNotAvailableInCurrentTier", answer.Header("iothub-errorcode"));
        }

        Assert.Equal(HttpStatusCode.OK, device.Status);
    }

    [Fact]
    public async Task WithoutATier_NothingIsThrottled()
    {
        await using var hub = EmulatorFixture.Start(_ => { });

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            statuses.Add((await hub.Service.SendAsync(HttpMethod.Post, "devices", Creates(100, $"free{i}"))).Status);
        }

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Null(hub.Emulator.HubTier);
    }

    [Fact]
    public async Task S1_Dps_AStatusPollOverFiveInTenSeconds_Is429WithRetryAfter()
    {
        var (hub, clock) = Start(IoTHubTier.S1);
        await using var _ = hub;
        var groupKey = hub.Emulator.AddEnrollmentGroup("tier-group");
        var registrationId = "poll-" + Guid.NewGuid().ToString("N")[..8];
        var deviceKey = SharedAccessKeys.DeriveDeviceKey(groupKey, registrationId);
        var answers = System.Threading.Channels.Channel.CreateUnbounded<string>();
        using var mqtt = new MqttClientFactory().CreateMqttClient();
        mqtt.ApplicationMessageReceivedAsync += e => { answers.Writer.TryWrite(e.ApplicationMessage.Topic + " " + Encoding.UTF8.GetString(e.ApplicationMessage.Payload)); return Task.CompletedTask; };
        var password = SasToken.CreateForTimeToLive(SasResource.ForDpsRegistration(hub.Emulator.IdScope, registrationId), deviceKey, TimeSpan.FromMinutes(10), SasResource.DpsRegistrationPolicy);
        await mqtt.ConnectAsync(new MqttClientOptionsBuilder().WithClientId(registrationId).WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V311)
            .WithCredentials($"{hub.Emulator.IdScope}/registrations/{registrationId}/api-version=2019-03-31", password)
            .WithTcpServer("localhost", hub.Emulator.DpsPort)
            .WithTlsOptions(t => t.UseTls().WithTargetHost("localhost").WithCertificateValidationHandler(c => hub.Trust.Validate(c.Certificate, c.SslPolicyErrors))).Build());
        await mqtt.SubscribeAsync("$dps/registrations/res/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await mqtt.PublishStringAsync("$dps/registrations/PUT/iotdps-register/?$rid=1", $"{{\"registrationId\":\"{registrationId}\"}}", MqttQualityOfServiceLevel.AtLeastOnce);
        var registered = await answers.Reader.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var operationId = JsonNode.Parse(registered[(registered.IndexOf(' ', StringComparison.Ordinal) + 1)..])!["operationId"]!.GetValue<string>();

        var topics = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            await mqtt.PublishStringAsync($"$dps/registrations/GET/iotdps-get-operationstatus/?$rid={i + 2}&operationId={operationId}", "", MqttQualityOfServiceLevel.AtLeastOnce);
            var answer = await answers.Reader.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            topics.Add(answer.Split(' ')[0]);
        }

        clock.Advance(TimeSpan.FromSeconds(2));
        await mqtt.PublishStringAsync($"$dps/registrations/GET/iotdps-get-operationstatus/?$rid=9&operationId={operationId}", "", MqttQualityOfServiceLevel.AtLeastOnce);
        var later = await answers.Reader.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.StartsWith("$dps/registrations/res/202/", registered, StringComparison.Ordinal);
        Assert.All(topics.Take(5), t => Assert.StartsWith("$dps/registrations/res/200/", t, StringComparison.Ordinal));
        Assert.Equal("$dps/registrations/res/429/?$rid=7&retry-after=2", topics[5]);
        Assert.StartsWith("$dps/registrations/res/200/?$rid=9", later, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(IoTHubTier.S1, 1, "DeviceConnection", 100)]
    [InlineData(IoTHubTier.S1, 2, "DeviceToCloud", 100)]
    [InlineData(IoTHubTier.S1, 9, "DeviceConnection", 108)]
    [InlineData(IoTHubTier.S2, 2, "DeviceToCloud", 240)]
    [InlineData(IoTHubTier.S3, 1, "DeviceConnection", 6000)]
    [InlineData(IoTHubTier.F1, 1, "Registry", 100.0 / 60)]
    [InlineData(IoTHubTier.B3, 2, "Registry", 10000.0 / 60)]
    [InlineData(IoTHubTier.S1, 3, "TwinReads", 100)]
    [InlineData(IoTHubTier.S2, 20, "TwinUpdates", 100)]
    [InlineData(IoTHubTier.S3, 2, "TwinReads", 1000)]
    [InlineData(IoTHubTier.S1, 1, "DirectMethods", 40)]
    [InlineData(IoTHubTier.S2, 1, "DirectMethods", 120)]
    [InlineData(IoTHubTier.S3, 1, "CloudToDevice", 5000.0 / 60)]
    [InlineData(IoTHubTier.S1, 4, "Queries", 80.0 / 60)]
    public void Rates_FollowTheDocumentedTable(IoTHubTier tier, int units, string operation, double perSecond)
    {
        var rate = TierQuotas.Rate(tier, units, Enum.Parse<TierOperation>(operation));

        Assert.True(rate.Available);
        Assert.Equal(perSecond, rate.PerSecond, 6);
    }

    [Fact]
    public async Task Units_OutsideTheTiersRange_AreEmulatorUnitsInvalid()
    {
        var error = await Assert.ThrowsAsync<IoTHubMqtt.Core.Errors.IoTHubMqttException>(() => IoTHubEmulator.StartAsync(new IoTHubEmulatorOptions { Tier = IoTHubTier.F1, Units = 2 }));
        Assert.Equal("EmulatorUnitsInvalid", error.ErrorId);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"1 to {TierQuotas.MaxUnits(IoTHubTier.F1)}"), error.Message, StringComparison.Ordinal);
    }
}
