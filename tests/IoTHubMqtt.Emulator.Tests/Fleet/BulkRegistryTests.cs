using System.Net;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests.Fleet;

/// <summary>The bulk registry call (POST /devices) as the hub answers it: per-device results and the 100-device limit.</summary>
public sealed class BulkRegistryTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    private ServiceRestClient Service => fixture.Service;

    private static JsonObject Entry(string id, string mode, JsonObject? extra = null)
    {
        var entry = new JsonObject { ["id"] = id, ["importMode"] = mode };
        foreach (var (name, value) in extra ?? [])
        {
            entry[name] = value?.DeepClone();
        }

        return entry;
    }

    [Fact]
    public async Task Create_Mixed_CreatesTheNewOnes_WithKeysAndTags_AndNamesTheExistingOneDeviceAlreadyExists()
    {
        var (existing, _) = fixture.CreateDevice("bulk-old");
        var withKey = fixture.NewDeviceId("bulk-key");
        var withTags = fixture.NewDeviceId("bulk-tags");
        var key = SharedAccessKeys.Generate();

        var answer = await Service.SendAsync(HttpMethod.Post, "devices", new JsonArray(
            Entry(withKey, "create", new JsonObject { ["authentication"] = new JsonObject { ["type"] = "sas", ["symmetricKey"] = new JsonObject { ["primaryKey"] = key, ["secondaryKey"] = key } } }),
            Entry(existing, "create"),
            Entry(withTags, "create", new JsonObject { ["status"] = "disabled", ["tags"] = new JsonObject { ["site"] = "north" } })));

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.False(answer.Json!["isSuccessful"]!.GetValue<bool>());
        var error = Assert.Single(answer.Json["errors"]!.AsArray())!;
        Assert.Equal(existing, error["deviceId"]!.GetValue<string>());
        Assert.Equal("DeviceAlreadyExists", error["errorCode"]!.GetValue<string>());
        Assert.Empty(answer.Json["warnings"]!.AsArray());
        Assert.Equal(key, fixture.Emulator.GetDevice(withKey).PrimaryKey);
        var twin = await Service.SendAsync(HttpMethod.Get, $"twins/{withTags}");
        Assert.Equal("north", twin.Json!["tags"]!["site"]!.GetValue<string>());
        Assert.Equal("disabled", twin.Json["status"]!.GetValue<string>());
        Assert.NotNull(fixture.Emulator.GetDevice(withTags).PrimaryKey);
    }

    [Fact]
    public async Task UpdateAndDelete_ByETag_ReportPreconditionFailedAndDeviceNotFoundPerDevice()
    {
        var (a, _) = fixture.CreateDevice("bulk-a");
        var (b, _) = fixture.CreateDevice("bulk-b");
        var missing = fixture.NewDeviceId("bulk-none");
        var etagA = (await Service.SendAsync(HttpMethod.Get, $"devices/{a}")).Json!["etag"]!.GetValue<string>();

        var updates = await Service.SendAsync(HttpMethod.Post, "devices", new JsonArray(
            Entry(a, "updateIfMatchETag", new JsonObject { ["eTag"] = etagA, ["status"] = "disabled" }),
            Entry(b, "updateIfMatchETag", new JsonObject { ["eTag"] = "stale", ["status"] = "disabled" }),
            Entry(missing, "update", new JsonObject { ["status"] = "disabled" })));

        var errors = updates.Json!["errors"]!.AsArray().Select(e => (e!["deviceId"]!.GetValue<string>(), e["errorCode"]!.GetValue<string>())).ToList();
        Assert.Equal([(b, "PreconditionFailed"), (missing, "DeviceNotFound")], errors);
        Assert.Equal("disabled", (await Service.SendAsync(HttpMethod.Get, $"devices/{a}")).Json!["status"]!.GetValue<string>());
        Assert.Equal("enabled", (await Service.SendAsync(HttpMethod.Get, $"devices/{b}")).Json!["status"]!.GetValue<string>());

        var deletes = await Service.SendAsync(HttpMethod.Post, "devices", new JsonArray(Entry(a, "delete"), Entry(b, "deleteIfMatchETag", new JsonObject { ["eTag"] = "stale" }), Entry(missing, "delete")));

        errors = deletes.Json!["errors"]!.AsArray().Select(e => (e!["deviceId"]!.GetValue<string>(), e["errorCode"]!.GetValue<string>())).ToList();
        Assert.Equal([(b, "PreconditionFailed"), (missing, "DeviceNotFound")], errors);
        Assert.Equal(HttpStatusCode.NotFound, (await Service.SendAsync(HttpMethod.Get, $"devices/{a}")).Status);
        Assert.Equal(HttpStatusCode.OK, (await Service.SendAsync(HttpMethod.Get, $"devices/{b}")).Status);
    }

    [Fact]
    public async Task MoreThan100Devices_Is413TooManyDevices_AndNothingIsCreated()
    {
        var ids = Enumerable.Range(0, 101).Select(_ => fixture.NewDeviceId("bulk-many")).ToList();

        var answer = await Service.SendAsync(HttpMethod.Post, "devices", new JsonArray(ids.Select(id => (JsonNode)Entry(id, "create")).ToArray()));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, answer.Status);
        Assert.Equal(413002, answer.Json!["errorCode"]!.GetValue<int>());
        Assert.Equal("TooManyDevices", answer.Header("iothub-errorcode"));
        Assert.Equal(HttpStatusCode.NotFound, (await Service.SendAsync(HttpMethod.Get, $"devices/{ids[0]}")).Status);

        var exactly100 = await Service.SendAsync(HttpMethod.Post, "devices", new JsonArray(ids.Take(100).Select(id => (JsonNode)Entry(id, "create")).ToArray()));
        Assert.Equal(HttpStatusCode.OK, exactly100.Status);
        Assert.True(exactly100.Json!["isSuccessful"]!.GetValue<bool>());
    }

    [Fact]
    public async Task SameDeviceTwice_Is400DeviceDefinedMultipleTimes_AndBadBodiesAre400()
    {
        var id = fixture.NewDeviceId("bulk-twice");

        var twice = await Service.SendAsync(HttpMethod.Post, "devices", new JsonArray(Entry(id, "create"), Entry(id, "delete")));
        var notArray = await Service.SendAsync(HttpMethod.Post, "devices", new JsonObject { ["id"] = id });
        var empty = await Service.SendAsync(HttpMethod.Post, "devices", new JsonArray());
        var badMode = await Service.SendAsync(HttpMethod.Post, "devices", new JsonArray(Entry(id, "createOrUpdate")));

        Assert.Equal((HttpStatusCode.BadRequest, 400011), (twice.Status, twice.Json!["errorCode"]!.GetValue<int>()));
        Assert.Equal(HttpStatusCode.BadRequest, notArray.Status);
        Assert.Equal(HttpStatusCode.BadRequest, empty.Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Service.SendAsync(HttpMethod.Get, $"devices/{id}")).Status);
        var error = Assert.Single(badMode.Json!["errors"]!.AsArray())!;
        Assert.Equal("ArgumentInvalid", error["errorCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task NodeSdkDialect_CapitalizedModesAndBlankKeys_AreAccepted()
    {
        var id = fixture.NewDeviceId("bulk-node");
        JsonObject BlankKeys() => new() { ["type"] = "sas", ["symmetricKey"] = new JsonObject { ["primaryKey"] = "", ["secondaryKey"] = "" } };

        var created = await Service.SendAsync(HttpMethod.Post, "devices", new JsonArray(Entry(id, "create", new JsonObject { ["authentication"] = BlankKeys() })));
        var updated = await Service.SendAsync(HttpMethod.Post, "devices", new JsonArray(Entry(id, "Update", new JsonObject { ["status"] = "disabled", ["authentication"] = BlankKeys() })));
        var status = (await Service.SendAsync(HttpMethod.Get, $"devices/{id}")).Json!["status"]!.GetValue<string>();
        var deleted = await Service.SendAsync(HttpMethod.Post, "devices", new JsonArray(Entry(id, "Delete")));

        Assert.True(created.Json!["isSuccessful"]!.GetValue<bool>(), created.Json.ToJsonString());
        Assert.True(updated.Json!["isSuccessful"]!.GetValue<bool>(), updated.Json.ToJsonString());
        Assert.Equal("disabled", status);
        Assert.True(deleted.Json!["isSuccessful"]!.GetValue<bool>(), deleted.Json.ToJsonString());
    }

    [Fact]
    public async Task BulkCall_NeedsRegistryWrite()
    {
        using var reader = new ServiceRestClient(fixture.Emulator.HttpsPort, fixture.Trust, fixture.Emulator.CreateServiceToken());
        var policy = IoTHubConnectionString.Parse(fixture.Emulator.OwnerConnectionString);
        reader.Authorization = SasToken.CreateForTimeToLive(fixture.Emulator.HostName, DerivedKey("registryRead"), TimeSpan.FromMinutes(5), "registryRead");

        var answer = await reader.SendAsync(HttpMethod.Post, "devices", new JsonArray(Entry(fixture.NewDeviceId("bulk-ro"), "create")));

        Assert.Equal(HttpStatusCode.Unauthorized, answer.Status);
        Assert.NotNull(policy.SharedAccessKey);
    }

    private string DerivedKey(string label) =>
        Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(
            Convert.FromBase64String(IoTHubConnectionString.Parse(fixture.Emulator.OwnerConnectionString).SharedAccessKey!), System.Text.Encoding.UTF8.GetBytes(label)));
}
