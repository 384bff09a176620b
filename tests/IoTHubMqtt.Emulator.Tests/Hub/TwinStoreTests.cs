using System.Text.Json.Nodes;
using IoTHubMqtt.Emulator.Hub;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Emulator.Tests.Hub;

/// <summary>Twins on their own: versions, <c>$metadata</c>, ETags, and the desired-property announcement.</summary>
public sealed class TwinStoreTests
{
    private readonly object gate = new();
    private readonly RecordingHubStore store = new();
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero));
    private readonly DeviceRegistry registry;
    private readonly TwinStore twins;

    public TwinStoreTests()
    {
        registry = new DeviceRegistry(gate, store, clock, new EmulatorLog(null));
        twins = new TwinStore(gate, registry, clock);
        registry.Put("dev1", null, [], null);
    }

    [Fact]
    public void PatchDesired_BumpsTheVersion_StampsMetadata_AndAnnouncesThePatchOutsideTheLock()
    {
        var announced = new List<(string Key, string Patch, bool LockHeld)>();
        twins.DesiredChanged += (key, patch) => announced.Add((key, patch.ToJsonString(), Monitor.IsEntered(gate)));
        clock.Advance(TimeSpan.FromSeconds(1));

        var twin = twins.Patch("dev1", new JsonObject { ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["rate"] = 5 } } }, null);

        var desired = twin["properties"]!["desired"]!;
        Assert.Equal(5, desired["rate"]!.GetValue<int>());
        Assert.Equal(2, desired["$version"]!.GetValue<long>());
        Assert.Equal("2026-01-02T03:04:06.0000000Z", desired["$metadata"]!["rate"]!["$lastUpdated"]!.GetValue<string>());
        Assert.Equal([("dev1", """{"rate":5,"$version":2}""", false)], announced);
        Assert.Equal(5, store.Devices["dev1"].Desired["rate"]!.GetValue<int>());
    }

    [Fact]
    public void PatchReported_FromTheDevice_IsStoredWithItsVersion()
    {
        var version = twins.PatchReported("dev1", new JsonObject { ["temp"] = 21.5 });

        Assert.Equal(2, version);
        Assert.Equal(21.5, store.Devices["dev1"].Reported["temp"]!.GetValue<double>());
        var sections = twins.GetSections("dev1");
        Assert.Equal(2, sections["reported"]!["$version"]!.GetValue<long>());
        Assert.Null(sections["reported"]!["$metadata"]); // a device reads no metadata
    }

    [Fact]
    public void Patch_WithAStaleETag_IsRefusedAndChangesNothing()
    {
        var before = twins.GetJson("dev1");

        var error = Assert.Throws<HubError>(() => twins.Patch("dev1", new JsonObject { ["tags"] = new JsonObject { ["a"] = 1 } }, "\"stale\""));

        Assert.Equal(412, error.Status);
        Assert.Equal(before.ToJsonString(), twins.GetJson("dev1").ToJsonString());
        twins.Patch("dev1", new JsonObject { ["tags"] = new JsonObject { ["a"] = 1 } }, $"\"{before["etag"]!.GetValue<string>()}\"");
    }

    [Fact]
    public void Patch_OfReportedProperties_FromTheService_IsRefused()
    {
        var body = new JsonObject { ["properties"] = new JsonObject { ["reported"] = new JsonObject { ["x"] = 1 } } };

        Assert.Equal(400, Assert.Throws<HubError>(() => twins.Patch("dev1", body, null)).Status);
    }

    [Fact]
    public void Replace_DropsWhatIsNotNamed()
    {
        twins.Patch("dev1", new JsonObject { ["tags"] = new JsonObject { ["a"] = 1, ["b"] = 2 } }, null);

        var twin = twins.Replace("dev1", new JsonObject { ["tags"] = new JsonObject { ["b"] = 3 } }, "*");

        Assert.Equal("""{"b":3}""", twin["tags"]!.ToJsonString());
    }

    [Fact]
    public void Query_PagesInIdOrder_WithoutModules()
    {
        registry.Put("dev0", null, [], null);
        registry.Put("dev0", "mod", [], null);
        registry.Put("dev2", null, [], null);

        var (first, more) = twins.Query(0, 2);
        var (rest, none) = twins.Query(2, 2);

        Assert.Equal(["dev0", "dev1"], first.Select(t => t!["deviceId"]!.GetValue<string>()));
        Assert.True(more);
        Assert.Equal(["dev2"], rest.Select(t => t!["deviceId"]!.GetValue<string>()));
        Assert.False(none);
    }

    [Fact]
    public void Twin_OfAnUnknownDevice_IsNotFound() =>
        Assert.Equal(404, Assert.Throws<HubError>(() => twins.GetJson("nobody")).Status);
}
