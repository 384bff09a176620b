using System.Text.Json.Nodes;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// The built-in endpoint as the official Event Hubs client for JavaScript (@azure/event-hubs, tests/interop/eventhubs.js)
/// sees it, with nothing but the connection string the emulator hands out (<see cref="IoTHubEmulator.EventHubConnectionString"/>)
/// and the emulator's CA in NODE_EXTRA_CA_CERTS. Each test has an emulator of its own, so positions are its own.
/// Skipped (with the reason) when node or tests/interop/node_modules is missing.
/// </summary>
public sealed class EventHubsNodeClientTests : IAsyncLifetime
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromSeconds(60);
    private EmulatorFixture fixture = null!;

    private IoTHubEmulator Emulator => fixture.Emulator;

    public ValueTask InitializeAsync()
    {
        Assert.SkipWhen(NodeInterop.Missing("@azure/event-hubs") is not null, NodeInterop.Missing("@azure/event-hubs") ?? "");
        fixture = new EmulatorFixture();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (fixture is not null)
        {
            await fixture.DisposeAsync();
        }
    }

    private NodeScript Start(params string[] arguments) =>
        NodeInterop.Start("eventhubs.js", new Dictionary<string, string> { ["NODE_EXTRA_CA_CERTS"] = Emulator.CaCertificatePath }, arguments);

    private async Task<JsonObject> RunAsync(string resultEvent, params string[] arguments)
    {
        using var script = Start(arguments);
        return await script.WaitForAsync(resultEvent, ScriptTimeout);
    }

    private async Task<List<JsonObject>> ReadAsync(string group, int partition, string position, int count)
    {
        var result = await RunAsync("events", "read", Emulator.EventHubConnectionString!, group, partition.ToString(System.Globalization.CultureInfo.InvariantCulture), position, count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return result["events"]!.AsArray().Select(e => e!.AsObject()).ToList();
    }

    /// <summary>Sends <paramref name="count"/> messages from a new device; returns it and its partition.</summary>
    private async Task<(MqttTestDevice Device, int Partition)> SendAsync(int count, string prefix = "eh")
    {
        var device = await fixture.ConnectNewDeviceAsync(prefix);
        for (var i = 1; i <= count; i++)
        {
            await device.PublishAsync($"devices/{device.DeviceId}/messages/events/n={i}", $"{{\"n\":{i}}}");
        }

        return (device, Emulator.Hub.PartitionOf(device.DeviceId));
    }

    private static List<long> Sequence(IEnumerable<JsonObject> events) => events.Select(e => (long)e["sequenceNumber"]!).ToList();

    [Fact]
    public async Task Properties_WithTheEmulatorsConnectionString_DescribeTheEntityAndEachPartition()
    {
        var (device, partition) = await SendAsync(3);
        await using var _ = device;
        var events = await ReadAsync("$Default", partition, """{"offset":"-1"}""", 3);

        var result = await RunAsync("properties", "properties", Emulator.EventHubConnectionString!);

        Assert.Equal(Emulator.EventHubName, (string?)result["name"]);
        Assert.Equal(["0", "1", "2", "3"], result["partitionIds"]!.AsArray().Select(p => (string?)p));
        foreach (var p in result["partitions"]!.AsArray().Select(p => p!.AsObject()))
        {
            var id = int.Parse((string)p["partitionId"]!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(Emulator.EventHubName, (string?)p["eventHubName"]);
            if (id == partition)
            {
                Assert.False((bool)p["isEmpty"]!);
                Assert.Equal(1, (long)p["beginningSequenceNumber"]!);
                Assert.Equal(3, (long)p["lastEnqueuedSequenceNumber"]!);
                Assert.Equal((string?)events[2]["offset"], (string?)p["lastEnqueuedOffset"]);
                Assert.Equal((long)events[2]["enqueuedTimeUtc"]!, (long)p["lastEnqueuedOnUtc"]!);
            }
            else
            {
                Assert.True((bool)p["isEmpty"]!);
                Assert.Equal((long)p["beginningSequenceNumber"]! - 1, (long)p["lastEnqueuedSequenceNumber"]!);
            }
        }
    }

    [Fact]
    public async Task Read_FromEarliestSequenceNumberOffsetAndEnqueuedTime_GetsEachEventExactlyOnce()
    {
        var (device, partition) = await SendAsync(5);
        await using var _ = device;

        var all = await ReadAsync("$Default", partition, """{"offset":"-1"}""", 5);
        Assert.Equal([1L, 2, 3, 4, 5], Sequence(all));
        Assert.Equal(["{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}", "{\"n\":5}"], all.Select(e => (string?)e["body"]));

        Assert.Equal([3L, 4, 5], Sequence(await ReadAsync("$Default", partition, """{"sequenceNumber":2}""", 3)));
        Assert.Equal([2L, 3, 4, 5], Sequence(await ReadAsync("$Default", partition, """{"sequenceNumber":2,"isInclusive":true}""", 4)));
        var offset = (string)all[2]["offset"]!;
        Assert.Equal([4L, 5], Sequence(await ReadAsync("$Default", partition, $$"""{"offset":"{{offset}}"}""", 2)));
        Assert.Equal([3L, 4, 5], Sequence(await ReadAsync("$Default", partition, $$"""{"offset":"{{offset}}","isInclusive":true}""", 3)));

        // The client resumes after an event's enqueued time (milliseconds, '>'): the event itself never comes again.
        var time = (long)all[2]["enqueuedTimeUtc"]!;
        var later = all.Where(e => (long)e["enqueuedTimeUtc"]! > time).ToList();
        if (later.Count > 0)
        {
            Assert.Equal(Sequence(later), Sequence(await ReadAsync("$Default", partition, $$"""{"enqueuedOn":{{time}}}""", later.Count)));
        }

        var beforeAll = (long)all[0]["enqueuedTimeUtc"]! - 1;
        Assert.Equal([1L, 2, 3, 4, 5], Sequence(await ReadAsync("$Default", partition, $$"""{"enqueuedOn":{{beforeAll}}}""", 5)));
    }

    [Fact]
    public async Task Read_FromLatest_GetsOnlyWhatIsEnqueuedAfterTheReaderAttached()
    {
        var (device, partition) = await SendAsync(2);
        await using var _ = device;
        using var reader = Start("read", Emulator.EventHubConnectionString!, "$Default", partition.ToString(System.Globalization.CultureInfo.InvariantCulture), """{"offset":"@latest"}""", "1");
        await reader.WaitForAsync("ready", ScriptTimeout);
        await WaitForReceiversAsync(1);

        await device.PublishAsync($"devices/{device.DeviceId}/messages/events/n=3", "after");

        var events = (await reader.WaitForAsync("events", ScriptTimeout))["events"]!.AsArray();
        var only = Assert.Single(events)!.AsObject();
        Assert.Equal("after", (string?)only["body"]);
        Assert.Equal(3, (long)only["sequenceNumber"]!);
    }

    /// <summary>Waits (bounded) until the emulator has <paramref name="count"/> partition receivers attached.</summary>
    private async Task WaitForReceiversAsync(int count)
    {
        var deadline = DateTime.UtcNow + ScriptTimeout;
        while (Emulator.EventHubReceiverCount < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{count} receiver(s) did not attach within {ScriptTimeout}.");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Events_CarryEverySystemPropertyTheHubSets()
    {
        await using var device = await fixture.ConnectNewDeviceAsync("props");
        await device.PublishAsync($"devices/{device.DeviceId}/messages/events/%24.mid=m-1&%24.cid=c-1&%24.ct=application%2Fjson&%24.ce=utf-8&color=red", """{"t":21.5}""");
        var partition = Emulator.Hub.PartitionOf(device.DeviceId);

        var e = Assert.Single(await ReadAsync("$Default", partition, """{"offset":"-1"}""", 1));

        Assert.Equal("red", (string?)e["properties"]!["color"]);
        Assert.Equal("m-1", (string?)e["messageId"]);
        Assert.Equal("c-1", (string?)e["correlationId"]);
        Assert.Equal("application/json", (string?)e["contentType"]);
        var system = e["systemProperties"]!.AsObject();
        Assert.Equal(device.DeviceId, (string?)system["iothub-connection-device-id"]);
        Assert.Equal(Emulator.Hub.FindDevice(device.DeviceId)!.GenerationId, (string?)system["iothub-connection-auth-generation-id"]);
        var method = JsonNode.Parse((string)system["iothub-connection-auth-method"]!)!;
        Assert.Equal("device", (string?)method["scope"]);
        Assert.Equal("sas", (string?)method["type"]);
        Assert.Equal("iothub", (string?)method["issuer"]);
        Assert.Equal((long)e["enqueuedTimeUtc"]!, (long)system["iothub-enqueuedtime"]!);
        Assert.Equal("Telemetry", (string?)system["iothub-message-source"]);
    }

    [Fact]
    public async Task ConsumerGroups_EachReadFromItsOwnPosition_AndAnOwnerLevelTakesOnlyItsOwnGroupsPartition()
    {
        var (device, partition) = await SendAsync(3);
        await using var _ = device;
        var p = partition.ToString(System.Globalization.CultureInfo.InvariantCulture);

        Assert.Equal([1L, 2, 3], Sequence(await ReadAsync("$Default", partition, """{"offset":"-1"}""", 3)));
        Assert.Equal([3L], Sequence(await ReadAsync("analytics", partition, """{"sequenceNumber":2}""", 1)));

        // An exclusive reader (owner level 1) of $Default; one with level 2 takes the partition from it.
        using var first = Start("read", Emulator.EventHubConnectionString!, "$Default", p, """{"offset":"-1"}""", "100", "1");
        await first.WaitForAsync("ready", ScriptTimeout);
        await WaitForReceiversAsync(1);
        Assert.Equal([1L, 2, 3], Sequence(await ReadOwnedAsync("$Default", p, 2)));
        var stolen = await Assert.ThrowsAsync<InvalidOperationException>(() => first.WaitForAsync("events", ScriptTimeout));
        Assert.Contains("owner level 2", stolen.Message, StringComparison.Ordinal);

        // Another group is untouched by either.
        Assert.Equal([1L, 2, 3], Sequence(await ReadAsync("analytics", partition, """{"offset":"-1"}""", 3)));
    }

    private async Task<List<JsonObject>> ReadOwnedAsync(string group, string partition, int ownerLevel)
    {
        var result = await RunAsync("events", "read", Emulator.EventHubConnectionString!, group, partition, """{"offset":"-1"}""", "3", ownerLevel.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return result["events"]!.AsArray().Select(e => e!.AsObject()).ToList();
    }

    [Fact]
    public async Task BuiltInEndpointSample_PlainLoginAndAbsoluteAddress_RedirectsToAConnectionStringTheClientReadsWith()
    {
        var redirect = await RunAsync("redirect", "builtin", Emulator.OwnerConnectionString, Emulator.AmqpPort.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(Emulator.EventHubName, (string?)redirect["entity"]);
        Assert.Equal(Emulator.HostName, (string?)redirect["hostname"]);
        Assert.Equal(Emulator.AmqpPort, (int)redirect["port"]!);

        using var script = Start("builtin", Emulator.OwnerConnectionString, Emulator.AmqpPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var properties = await script.WaitForAsync("properties", ScriptTimeout);
        Assert.Equal(Emulator.EventHubName, (string?)properties["name"]);
    }
}
