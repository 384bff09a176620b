using System.Net;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Emulator.Tests;

public sealed class ServiceApiTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    private ServiceRestClient Service => fixture.Service;

    [Fact]
    public async Task Device_CreateGetUpdateDelete_FollowsETagRules()
    {
        var id = fixture.NewDeviceId();
        var created = await Service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id });
        Assert.Equal(HttpStatusCode.OK, created.Status);
        var etag = created.Json!["etag"]!.GetValue<string>();
        Assert.Equal($"\"{etag}\"", created.Header("ETag"));
        Assert.Equal("sas", created.Json["authentication"]!["type"]!.GetValue<string>());
        var primary = created.Json["authentication"]!["symmetricKey"]!["primaryKey"]!.GetValue<string>();
        Assert.Equal(32, Convert.FromBase64String(primary).Length);

        var again = await Service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id });
        Assert.Equal(HttpStatusCode.Conflict, again.Status);
        Assert.Equal(409001, again.Json!["errorCode"]!.GetValue<int>());

        var stale = await Service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id, ["status"] = "disabled" },
            new Dictionary<string, string> { ["If-Match"] = "\"not-the-etag\"" });
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.Status);

        var updated = await Service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id, ["status"] = "disabled" },
            new Dictionary<string, string> { ["If-Match"] = $"\"{etag}\"" });
        Assert.Equal(HttpStatusCode.OK, updated.Status);
        Assert.Equal("disabled", updated.Json!["status"]!.GetValue<string>());
        Assert.NotEqual(etag, updated.Json["etag"]!.GetValue<string>());
        Assert.Equal(primary, updated.Json["authentication"]!["symmetricKey"]!["primaryKey"]!.GetValue<string>());

        var got = await Service.SendAsync(HttpMethod.Get, $"devices/{id}");
        Assert.Equal("disabled", got.Json!["status"]!.GetValue<string>());

        var wrongDelete = await Service.SendAsync(HttpMethod.Delete, $"devices/{id}", headers: new Dictionary<string, string> { ["If-Match"] = $"\"{etag}\"" });
        Assert.Equal(HttpStatusCode.PreconditionFailed, wrongDelete.Status);
        var deleted = await Service.SendAsync(HttpMethod.Delete, $"devices/{id}", headers: new Dictionary<string, string> { ["If-Match"] = "*" });
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        var gone = await Service.SendAsync(HttpMethod.Get, $"devices/{id}");
        Assert.Equal(HttpStatusCode.NotFound, gone.Status);
        Assert.Equal(404001, gone.Json!["errorCode"]!.GetValue<int>());
    }

    [Fact]
    public async Task Device_CreatedWithGivenKeys_ConnectsWithThem()
    {
        var id = fixture.NewDeviceId();
        var key = SharedAccessKeys.Generate();
        var created = await Service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject
        {
            ["deviceId"] = id,
            ["authentication"] = new JsonObject { ["type"] = "sas", ["symmetricKey"] = new JsonObject { ["primaryKey"] = key, ["secondaryKey"] = SharedAccessKeys.Generate() } },
        });
        Assert.Equal(HttpStatusCode.OK, created.Status);
        await using var device = await MqttTestDevice.ConnectAsync(fixture.Emulator, id, key);
        Assert.True(device.Client.IsConnected);
        // the hub records the connection just after its CONNACK
        var state = await Eventually.ValueAsync(
            async () => (await Service.SendAsync(HttpMethod.Get, $"devices/{id}")).Json!["connectionState"]!.GetValue<string>(),
            value => value == "Connected", "the device shown as connected");

        Assert.Equal("Connected", state);
    }

    [Theory]
    [InlineData("bad id with spaces")]
    [InlineData("slash/id")]
    [InlineData("caf\u00e9")]
    public async Task Device_InvalidId_Is400(string id)
    {
        var created = await Service.SendAsync(HttpMethod.Put, $"devices/{Uri.EscapeDataString(id)}", new JsonObject());
        Assert.Equal(HttpStatusCode.BadRequest, created.Status);
    }

    [Fact]
    public async Task Twin_ServicePatchWithStaleETag_Is412AndReplaceRemovesProperties()
    {
        var (id, _) = fixture.CreateDevice();
        var first = await Service.SendAsync(HttpMethod.Patch, $"twins/{id}", new JsonObject
        {
            ["tags"] = new JsonObject { ["site"] = "lab" },
            ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["a"] = 1, ["b"] = 2 } },
        });
        Assert.Equal(HttpStatusCode.OK, first.Status);
        var etag = first.Json!["etag"]!.GetValue<string>();
        var second = await Service.SendAsync(HttpMethod.Patch, $"twins/{id}", new JsonObject { ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["b"] = null } } },
            new Dictionary<string, string> { ["If-Match"] = $"\"{etag}\"" });
        Assert.Equal(HttpStatusCode.OK, second.Status);
        Assert.Null(second.Json!["properties"]!["desired"]!["b"]);
        Assert.Equal(3, second.Json["properties"]!["desired"]!["$version"]!.GetValue<long>());

        var stale = await Service.SendAsync(HttpMethod.Patch, $"twins/{id}", new JsonObject { ["tags"] = new JsonObject { ["x"] = 1 } },
            new Dictionary<string, string> { ["If-Match"] = $"\"{etag}\"" });
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.Status);

        var replaced = await Service.SendAsync(HttpMethod.Put, $"twins/{id}", new JsonObject
        {
            ["tags"] = new JsonObject { ["owner"] = "me" },
            ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["c"] = 3 } },
        });
        Assert.Equal(HttpStatusCode.OK, replaced.Status);
        Assert.Null(replaced.Json!["tags"]!["site"]);
        Assert.Equal("me", replaced.Json["tags"]!["owner"]!.GetValue<string>());
        Assert.Null(replaced.Json["properties"]!["desired"]!["a"]);
        Assert.Equal(3, replaced.Json["properties"]!["desired"]!["c"]!.GetValue<int>());
    }

    [Fact]
    public async Task Device_UpdateWithoutAuthentication_KeepsX509Thumbprint()
    {
        var id = fixture.NewDeviceId();
        fixture.Emulator.CreateX509Device(id, new string('B', 40));
        var updated = await Service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id, ["status"] = "enabled" },
            new Dictionary<string, string> { ["If-Match"] = "*" });
        Assert.Equal(HttpStatusCode.OK, updated.Status);
        Assert.Equal("selfSigned", updated.Json!["authentication"]!["type"]!.GetValue<string>());
        Assert.Equal(new string('B', 40), updated.Json["authentication"]!["x509Thumbprint"]!["primaryThumbprint"]!.GetValue<string>());
    }

    [Fact]
    public async Task Device_FieldOfTheWrongType_Is400()
    {
        var id = fixture.NewDeviceId();
        var response = await Service.SendAsync(HttpMethod.Put, $"devices/{id}", new JsonObject { ["deviceId"] = id, ["status"] = 1 });
        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
    }

    [Fact]
    public async Task Enrollments_CreatedOverRest_ProvisionAndCanBeDeleted()
    {
        var group = "rest-grp-" + Guid.NewGuid().ToString("N")[..6];
        var key = SharedAccessKeys.Generate(64);
        var created = await Service.SendAsync(HttpMethod.Put, $"enrollmentGroups/{group}", new JsonObject
        {
            ["enrollmentGroupId"] = group,
            ["attestation"] = new JsonObject { ["type"] = "symmetricKey", ["symmetricKey"] = new JsonObject { ["primaryKey"] = key, ["secondaryKey"] = SharedAccessKeys.Generate(64) } },
        });
        Assert.Equal(HttpStatusCode.OK, created.Status);
        Assert.Equal(key, created.Json!["attestation"]!["symmetricKey"]!["primaryKey"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await Service.SendAsync(HttpMethod.Get, $"enrollmentGroups/{group}")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await Service.SendAsync(HttpMethod.Delete, $"enrollmentGroups/{group}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await Service.SendAsync(HttpMethod.Get, $"enrollmentGroups/{group}")).Status);
        var x509 = await Service.SendAsync(HttpMethod.Put, "enrollments/x509-one", new JsonObject { ["attestation"] = new JsonObject { ["type"] = "x509" } });
        Assert.Equal(HttpStatusCode.BadRequest, x509.Status);
    }

    [Fact]
    public async Task Twin_ServiceChangingReported_Is400()
    {
        var (id, _) = fixture.CreateDevice();
        var response = await Service.SendAsync(HttpMethod.Patch, $"twins/{id}", new JsonObject { ["properties"] = new JsonObject { ["reported"] = new JsonObject { ["a"] = 1 } } });
        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
    }

    [Fact]
    public async Task Query_SelectAllDevices_PagesWithContinuation()
    {
        await using var own = EmulatorFixture.Start(_ => { });
        var ids = Enumerable.Range(0, 5).Select(_ => own.CreateDevice().DeviceId).ToHashSet();
        var seen = new List<string>();
        string? continuation = null;
        var pages = 0;
        do
        {
            var headers = new Dictionary<string, string> { ["x-ms-max-item-count"] = "2" };
            if (continuation is not null)
            {
                headers["x-ms-continuation"] = continuation;
            }

            var page = await own.Service.SendAsync(HttpMethod.Post, "devices/query", new JsonObject { ["query"] = "SELECT * FROM devices" }, headers);
            Assert.Equal(HttpStatusCode.OK, page.Status);
            seen.AddRange(page.Json!.AsArray().Select(t => t!["deviceId"]!.GetValue<string>()));
            continuation = page.Header("x-ms-continuation");
            pages++;
            Assert.True(pages < 10);
        }
        while (continuation is not null);

        Assert.Equal(3, pages);
        Assert.Equal(ids.Order(), seen.Order());
    }

    [Fact]
    public async Task Query_Unsupported_Is400()
    {
        var page = await Service.SendAsync(HttpMethod.Post, "devices/query", new JsonObject { ["query"] = "SELECT deviceId FROM devices WHERE tags.x = 1" });
        Assert.Equal(HttpStatusCode.BadRequest, page.Status);
    }

    [Fact]
    public async Task Request_WithoutAuthorization_Is401()
    {
        using var anonymous = new ServiceRestClient(fixture.Emulator.HttpsPort, fixture.Trust, null);
        var response = await anonymous.SendAsync(HttpMethod.Get, $"devices/{fixture.NewDeviceId()}");
        Assert.Equal(HttpStatusCode.Unauthorized, response.Status);
    }

    [Fact]
    public async Task Request_WithTokenFromAnotherKey_Is401()
    {
        using var forged = new ServiceRestClient(fixture.Emulator.HttpsPort, fixture.Trust,
            SasToken.CreateForTimeToLive(fixture.Emulator.HostName, SharedAccessKeys.Generate(), TimeSpan.FromMinutes(5), "iothubowner"));
        var response = await forged.SendAsync(HttpMethod.Get, $"devices/{fixture.NewDeviceId()}");
        Assert.Equal(HttpStatusCode.Unauthorized, response.Status);
    }

    [Fact]
    public async Task Request_WithReadOnlyPolicy_CannotCreateDevices()
    {
        var policy = fixture.Emulator.Hub.Policies["registryRead"];
        using var reader = new ServiceRestClient(fixture.Emulator.HttpsPort, fixture.Trust,
            SasToken.CreateForTimeToLive(fixture.Emulator.HostName, policy.PrimaryKey, TimeSpan.FromMinutes(5), "registryRead"));
        var (id, _) = fixture.CreateDevice();
        Assert.Equal(HttpStatusCode.OK, (await reader.SendAsync(HttpMethod.Get, $"devices/{id}")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await reader.SendAsync(HttpMethod.Put, $"devices/{fixture.NewDeviceId()}", new JsonObject())).Status);
    }

    [Fact]
    public async Task Request_WithoutApiVersion_Is400()
    {
        var response = await Service.SendAsync(HttpMethod.Get, $"devices/{fixture.NewDeviceId()}", addApiVersion: false);
        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
    }

    [Fact]
    public async Task Requests_OverTheRate_Get429WithRetryAfter_UntilTheWindowPasses()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var limited = EmulatorFixture.Start(o => { o.ServiceRequestsPerSecond = 5; o.TimeProvider = clock; });
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 5; i++)
        {
            statuses.Add((await limited.Service.SendAsync(HttpMethod.Get, "devices")).Status);
        }

        var throttled = await limited.Service.SendAsync(HttpMethod.Get, "devices");
        clock.Advance(TimeSpan.FromMilliseconds(200)); // refills one request
        var refilled = await limited.Service.SendAsync(HttpMethod.Get, "devices");
        var again = await limited.Service.SendAsync(HttpMethod.Get, "devices");

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.Status);
        Assert.Equal("1", throttled.Header("Retry-After"));
        Assert.Equal(429001, throttled.Json!["errorCode"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.OK, refilled.Status);
        Assert.Equal(HttpStatusCode.TooManyRequests, again.Status);
    }

    [Fact]
    public async Task RequestsWithABadToken_AreRefused401_WithoutUsingUpTheRateOfLegitimateCallers()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow); // no refill during the test: only what is counted matters
        await using var limited = EmulatorFixture.Start(o => { o.ServiceRequestsPerSecond = 5; o.TimeProvider = clock; });
        using var attacker = new ServiceRestClient(limited.Emulator.HttpsPort, limited.Trust,
            SasToken.CreateForTimeToLive(limited.Emulator.HostName, SharedAccessKeys.Generate(), TimeSpan.FromHours(1), "iothubowner"));
        var refused = new List<HttpStatusCode>();
        for (var i = 0; i < 60; i++)
        {
            refused.Add((await attacker.SendAsync(HttpMethod.Get, "devices")).Status);
        }

        attacker.Authorization = null;
        refused.Add((await attacker.SendAsync(HttpMethod.Get, "devices")).Status);

        Assert.All(refused, status => Assert.Equal(HttpStatusCode.Unauthorized, status));
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await limited.Service.SendAsync(HttpMethod.Get, "devices")).Status);
        }

        Assert.Equal(HttpStatusCode.TooManyRequests, (await limited.Service.SendAsync(HttpMethod.Get, "devices")).Status);
    }

    [Fact]
    public async Task OwnerConnectionString_ParsesAsPolicyStringForTheHub()
    {
        var parsed = IoTHubConnectionString.Parse(fixture.Emulator.OwnerConnectionString);
        Assert.Equal(fixture.Emulator.HostName, parsed.HostName);
        Assert.Equal("iothubowner", parsed.SharedAccessKeyName);
        Assert.DoesNotContain(parsed.SharedAccessKey!, fixture.Emulator.ToString(), StringComparison.Ordinal);
        using var client = new ServiceRestClient(fixture.Emulator.HttpsPort, fixture.Trust,
            SasToken.CreateForTimeToLive(parsed.HostName, parsed.SharedAccessKey!, TimeSpan.FromMinutes(5), parsed.SharedAccessKeyName));
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(HttpMethod.Get, "devices")).Status);
    }
}
