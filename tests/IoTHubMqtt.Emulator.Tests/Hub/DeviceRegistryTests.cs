using System.Text.Json.Nodes;
using IoTHubMqtt.Emulator.Hub;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Emulator.Tests.Hub;

/// <summary>The identity registry on its own: what it keeps, what it writes to the store, and what it refuses.</summary>
public sealed class DeviceRegistryTests
{
    private const string Key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    private readonly object gate = new();
    private readonly RecordingHubStore store = new();
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero));
    private readonly DeviceRegistry registry;

    public DeviceRegistryTests() => registry = new DeviceRegistry(gate, store, clock, new EmulatorLog(null));

    [Fact]
    public void Create_EmptyKeys_AreGeneratedAndStored()
    {
        var json = registry.Put("dev1", null, new JsonObject { ["authentication"] = new JsonObject { ["type"] = "sas", ["symmetricKey"] = new JsonObject { ["primaryKey"] = "", ["secondaryKey"] = "" } } }, null);

        var primary = json["authentication"]!["symmetricKey"]!["primaryKey"]!.GetValue<string>();
        Assert.Equal(32, Convert.FromBase64String(primary).Length);
        Assert.Equal(primary, store.Devices["dev1"].PrimaryKey);
        Assert.Equal("2026-01-02T03:04:05.0000000Z", json["statusUpdatedTime"]!.GetValue<string>());
    }

    [Fact]
    public void Create_Twice_IsAConflict_AndUpdateNeedsTheETag()
    {
        var created = registry.Put("dev1", null, Sas(), null);

        Assert.Equal(409, Assert.Throws<HubError>(() => registry.Put("dev1", null, Sas(), null)).Status);
        Assert.Equal(412, Assert.Throws<HubError>(() => registry.Put("dev1", null, Sas(), "\"other\"")).Status);
        var updated = registry.Put("dev1", null, Sas(), $"\"{created["etag"]!.GetValue<string>()}\"");
        Assert.NotEqual(created["etag"]!.GetValue<string>(), updated["etag"]!.GetValue<string>());
        registry.Put("dev1", null, Sas(), "\"*\"");
    }

    [Fact]
    public void Update_Disabling_RevokesTheDevice_OutsideTheLock()
    {
        registry.Put("dev1", null, Sas(), null);
        var revoked = new List<(string Key, bool LockHeld)>();
        registry.Revoked += key => revoked.Add((key, Monitor.IsEntered(gate)));

        registry.Put("dev1", null, new JsonObject { ["status"] = "disabled" }, "*");

        Assert.Equal([("dev1", false)], revoked);
        Assert.False(store.Devices["dev1"].Enabled);
        Assert.Equal(Key, store.Devices["dev1"].PrimaryKey); // an update without authentication keeps the keys
    }

    [Fact]
    public void Delete_TakesTheModulesWithIt_AndTellsTheOtherPartsUnderTheLock()
    {
        registry.Put("dev1", null, Sas(), null);
        registry.Put("dev1", "mod1", Sas(), null);
        registry.Put("dev2", null, Sas(), null);
        var removing = new List<(string Key, bool LockHeld)>();
        registry.Removing += key => removing.Add((key, Monitor.IsEntered(gate)));

        registry.Delete("dev1", null);

        Assert.Equal([("dev1", true), ("dev1/mod1", true)], removing.OrderBy(r => r.Key, StringComparer.Ordinal));
        Assert.Equal(["dev2"], store.Devices.Keys);
        Assert.Equal(["dev2"], registry.DeviceIds());
        Assert.Equal(404, Assert.Throws<HubError>(() => registry.GetJson("dev1/mod1")).Status);
    }

    [Fact]
    public void Module_OfAnUnknownDevice_IsNotFound()
    {
        Assert.Equal(404, Assert.Throws<HubError>(() => registry.Put("nobody", "mod1", Sas(), null)).Status);
        Assert.Empty(store.Devices);
    }

    [Theory]
    [InlineData("bad id")]
    [InlineData("")]
    public void Create_InvalidId_IsRefusedAndNothingIsStored(string id)
    {
        Assert.Equal(400, Assert.Throws<HubError>(() => registry.Put(id, null, Sas(), null)).Status);
        Assert.Empty(store.Devices);
    }

    [Fact]
    public void Load_TakesWhatTheStoreKept()
    {
        store.SaveDevice(new DeviceIdentity { DeviceId = "kept", PrimaryKey = Key, SecondaryKey = Key });
        var reloaded = new DeviceRegistry(new object(), store, clock, new EmulatorLog(null));

        reloaded.Load(store.LoadDevices());

        Assert.Equal(1, reloaded.Count);
        Assert.Equal(Key, reloaded.Find("kept")!.PrimaryKey);
    }

    private static JsonObject Sas() => new()
    {
        ["authentication"] = new JsonObject { ["type"] = "sas", ["symmetricKey"] = new JsonObject { ["primaryKey"] = Key, ["secondaryKey"] = Key } },
    };
}
