using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>State in <c>-DataPath</c> survives a restart and a kill: devices, keys, twins, undelivered C2D, telemetry.</summary>
public sealed class PersistenceTests : IDisposable
{
    private readonly string dataPath = Path.Combine(Path.GetTempPath(), "iothubmqtt-persist-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(dataPath, true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task Restart_InProcess_KeepsDevicesTwinsAndUndeliveredMessages()
    {
        string id, key, owner;
        await using (var first = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }))
        {
            (id, key) = first.CreateDevice("kept");
            owner = first.Emulator.OwnerConnectionString;
            await first.Service.SendAsync(HttpMethod.Patch, $"twins/{id}", new JsonObject { ["tags"] = new JsonObject { ["room"] = "12" }, ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["rate"] = 5 } } });
            await using var device = await MqttTestDevice.ConnectAsync(first.Emulator, id, key);
            await device.SubscribeAsync("$iothub/twin/res/#");
            await device.PublishAsync("$iothub/twin/PATCH/properties/reported/?$rid=1", """{"fw":"2.1"}""");
            await device.ReceiveAsync("$iothub/twin/res/204/");
            await device.PublishAsync($"devices/{id}/messages/events/", "t1");
            await device.PublishAsync($"devices/{id}/messages/events/", "t2");
            Assert.Equal(HttpStatusCode.OK, (await first.Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("survive"))).Status);
        }

        await using var second = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; });
        Assert.Equal(owner, second.Emulator.OwnerConnectionString);
        var twin = await second.Service.SendAsync(HttpMethod.Get, $"twins/{id}");
        Assert.Equal(HttpStatusCode.OK, twin.Status);
        Assert.Equal("12", twin.Json!["tags"]!["room"]!.GetValue<string>());
        Assert.Equal(5, twin.Json["properties"]!["desired"]!["rate"]!.GetValue<int>());
        Assert.Equal("2.1", twin.Json["properties"]!["reported"]!["fw"]!.GetValue<string>());
        await using var again = await MqttTestDevice.ConnectAsync(second.Emulator, id, key);
        await again.SubscribeAsync($"devices/{id}/messages/devicebound/#");
        Assert.Equal("survive", MqttTestDevice.Text(await again.ReceiveAsync($"devices/{id}/messages/devicebound/")));

        // Telemetry keeps its numbers, hub-wide and within its partition, and goes on from them.
        await again.PublishAsync($"devices/{id}/messages/events/", "t3");
        var telemetry = await Eventually.ValueAsync(
            async () => (await second.Emulator.Hub.Telemetry.ReadAsync(0, 10, id, TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken)).ToList(),
            read => read.Count >= 3, "three telemetry messages read back", TestContext.Current.CancellationToken);

        Assert.Equal(["t1", "t2", "t3"], telemetry.Select(m => Encoding.UTF8.GetString(m.Body)));
        Assert.Equal([1L, 2, 3], telemetry.Select(m => m.PartitionSequenceNumber));
        Assert.Equal(telemetry.Select(m => m.SequenceNumber).Order(), telemetry.Select(m => m.SequenceNumber));
    }

    [Fact]
    public async Task Kill_ChildProcess_LosesNothingAcknowledged()
    {
        var ownerKey = SharedAccessKeys.Generate();
        string id, key;
        using (var first = await ChildEmulator.StartAsync(dataPath, ownerKey))
        {
            using var service = first.Service();
            id = "killed-" + Guid.NewGuid().ToString("N")[..6];
            var created = await service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id });
            Assert.Equal(HttpStatusCode.OK, created.Status);
            key = created.Json!["authentication"]!["symmetricKey"]!["primaryKey"]!.GetValue<string>();
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes($"c2d-{i}"))).Status);
            }

            await using var device = await MqttTestDevice.ConnectAsync(first.Options(id, key).Build(), id);
            await device.SubscribeAsync("$iothub/twin/res/#");
            await device.PublishAsync("$iothub/twin/PATCH/properties/reported/?$rid=1", """{"state":"before-kill"}""");
            await device.ReceiveAsync("$iothub/twin/res/204/");
            Assert.True((await device.PublishAsync($"devices/{id}/messages/events/", "acked telemetry")).IsSuccess);
            first.Kill();
        }

        using var second = await ChildEmulator.StartAsync(dataPath, ownerKey);
        using var service2 = second.Service();
        var twin = await service2.SendAsync(HttpMethod.Get, $"twins/{id}");
        Assert.Equal("before-kill", twin.Json!["properties"]!["reported"]!["state"]!.GetValue<string>());
        var telemetry = await service2.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={id}&timeout=2");
        Assert.Equal("acked telemetry", Encoding.UTF8.GetString(Convert.FromBase64String(Assert.Single(telemetry.Json!["messages"]!.AsArray())!["body"]!.GetValue<string>())));
        await using var again = await MqttTestDevice.ConnectAsync(second.Options(id, key).Build(), id);
        await again.SubscribeAsync($"devices/{id}/messages/devicebound/#");
        var bodies = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            bodies.Add(MqttTestDevice.Text(await again.ReceiveAsync($"devices/{id}/messages/devicebound/")));
        }

        Assert.Equal(["c2d-0", "c2d-1", "c2d-2"], bodies);
    }

    [Fact]
    public async Task TelemetryPastTheRetentionPeriod_IsGone_FromMemoryAndFromDisk()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        string id;
        await using (var first = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; o.TimeProvider = clock; o.TelemetryRetentionPeriod = TimeSpan.FromHours(1); }))
        {
            var (deviceId, key) = first.CreateDevice("aged");
            id = deviceId;
            await using var device = await MqttTestDevice.ConnectAsync(first.Emulator, id, key);
            await device.PublishAsync($"devices/{id}/messages/events/", "old");
            clock.Advance(TimeSpan.FromMinutes(40));
            await device.PublishAsync($"devices/{id}/messages/events/", "newer");
            clock.Advance(TimeSpan.FromMinutes(30)); // "old" is 70 minutes old now, "newer" 30

            var read = await first.Service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={id}&from=0");
            Assert.Equal(["newer"], Bodies(read));
        }

        // On disk the same: a restart brings back what memory kept, no more.
        await using var second = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; o.TimeProvider = clock; o.TelemetryRetentionPeriod = TimeSpan.FromHours(1); });
        Assert.Equal(["newer"], Bodies(await second.Service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={id}&from=0")));
        clock.Advance(TimeSpan.FromMinutes(31));
        Assert.Empty(Bodies(await second.Service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={id}&from=0")));
    }

    [Fact]
    public async Task CloudToDeviceFeedback_NotYetRead_SurvivesARestart()
    {
        string id;
        await using (var first = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }))
        {
            var (deviceId, key) = first.CreateDevice("acked");
            id = deviceId;
            await first.Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("track me"),
                headers: new Dictionary<string, string> { ["iothub-ack"] = "full", ["iothub-messageid"] = "tracked-1" });
            await using var device = await MqttTestDevice.ConnectAsync(first.Emulator, id, key);
            await device.SubscribeAsync($"devices/{id}/messages/devicebound/#");
            await device.ReceiveAsync($"devices/{id}/messages/devicebound/");
            await Eventually.TrueAsync(() => first.Emulator.Hub.QueuedCount(id) == 0, "the acknowledged C2D message leaving the queue");
        }

        await using var second = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; });
        var feedback = await second.Service.SendAsync(HttpMethod.Get, "$emulator/messages/feedback");
        var record = Assert.Single(feedback.Json!["feedback"]!.AsArray())!;
        Assert.Equal("tracked-1", record["originalMessageId"]!.GetValue<string>());
        Assert.Equal("Success", record["statusCode"]!.GetValue<string>());
        Assert.Empty((await second.Service.SendAsync(HttpMethod.Get, "$emulator/messages/feedback")).Json!["feedback"]!.AsArray()); // read once
    }

    private static List<string> Bodies(ServiceResponse read) =>
        [.. read.Json!["messages"]!.AsArray().Select(m => Encoding.UTF8.GetString(Convert.FromBase64String(m!["body"]!.GetValue<string>())))];
}
