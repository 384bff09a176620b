using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests.Fleet;

/// <summary>The emulator's import and export jobs against real blob storage (Azurite), driven over REST as the hub is.</summary>
public sealed class ImportExportJobTests(EmulatorFixture fixture, AzuriteFixture azurite) : IClassFixture<EmulatorFixture>, IClassFixture<AzuriteFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(BlobContainerClient Container, Uri Sas)> ContainerAsync(BlobContainerSasPermissions permissions = BlobContainerSasPermissions.All)
    {
        Assert.SkipWhen(azurite.Missing is not null, azurite.Missing ?? "");
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(AzuriteFixture.NewContainerName());
        await container.CreateAsync(cancellationToken: Ct);
        return (container, container.GenerateSasUri(permissions, DateTimeOffset.UtcNow.AddHours(1)));
    }

    private async Task<JsonNode> WaitAsync(string jobId)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var job = (await fixture.Service.SendAsync(HttpMethod.Get, $"jobs/{jobId}", cancellationToken: Ct)).Json!;
            if (job["status"]!.GetValue<string>() is "completed" or "failed" or "cancelled" || DateTime.UtcNow > deadline)
            {
                return job;
            }

            await Task.Delay(100, Ct);
        }
    }

    private static async Task<List<JsonObject>> LinesAsync(BlobContainerClient container, string blob) =>
        Encoding.UTF8.GetString((await container.GetBlobClient(blob).DownloadContentAsync(Ct)).Value.Content.ToArray())
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();

    [Fact]
    public async Task Import_DevicesTxt_CreatesDevicesWithTwins_AndWritesOneErrorLineForEachBadDevice()
    {
        var (container, sas) = await ContainerAsync();
        var (existing, _) = fixture.CreateDevice("imp-old");
        var key = SharedAccessKeys.Generate();
        var a = fixture.NewDeviceId("imp-a");
        var b = fixture.NewDeviceId("imp-b");
        var lines = new[]
        {
            new JsonObject { ["id"] = a, ["importMode"] = "create", ["authentication"] = new JsonObject { ["symmetricKey"] = new JsonObject { ["primaryKey"] = key, ["secondaryKey"] = key } }, ["tags"] = new JsonObject { ["site"] = "north" } }.ToJsonString(),
            new JsonObject { ["id"] = b, ["status"] = "disabled", ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["interval"] = 30 } } }.ToJsonString(),
            new JsonObject { ["id"] = existing, ["importMode"] = "create" }.ToJsonString(),
            "this is not json",
        };
        await container.GetBlobClient("devices.txt").UploadAsync(BinaryData.FromString(string.Join("\n", lines) + "\n"), Ct);

        var created = await fixture.Service.SendAsync(HttpMethod.Post, "jobs/create", new JsonObject
        {
            ["type"] = "import", ["inputBlobContainerUri"] = sas.AbsoluteUri, ["outputBlobContainerUri"] = sas.AbsoluteUri,
        }, cancellationToken: Ct);
        var job = await WaitAsync(created.Json!["jobId"]!.GetValue<string>());

        Assert.Equal(HttpStatusCode.OK, created.Status);
        Assert.Equal("import", created.Json["type"]!.GetValue<string>());
        Assert.Equal("completed", job["status"]!.GetValue<string>());
        Assert.Equal(100, job["progress"]!.GetValue<int>());
        Assert.Equal(key, fixture.Emulator.GetDevice(a).PrimaryKey);
        Assert.Equal("north", (await fixture.Service.SendAsync(HttpMethod.Get, $"twins/{a}", cancellationToken: Ct)).Json!["tags"]!["site"]!.GetValue<string>());
        var twinB = (await fixture.Service.SendAsync(HttpMethod.Get, $"twins/{b}", cancellationToken: Ct)).Json!;
        Assert.Equal(30, twinB["properties"]!["desired"]!["interval"]!.GetValue<int>());
        Assert.Equal("disabled", twinB["status"]!.GetValue<string>());
        var errors = await LinesAsync(container, "importErrors.log");
        Assert.Equal([409001, 400012], errors.Select(e => e["errorCode"]!.GetValue<int>()));
        Assert.Equal(existing, errors[0]["deviceId"]!.GetValue<string>());
        Assert.Contains("line 4", errors[1]["errorStatus"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_WritesEveryDeviceWithItsTwin_KeysOrNot()
    {
        var (container, sas) = await ContainerAsync();
        var (id, key) = fixture.CreateDevice("exp");
        await fixture.Service.SendAsync(HttpMethod.Patch, $"twins/{id}", new JsonObject { ["tags"] = new JsonObject { ["floor"] = 3 }, ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["mode"] = "eco" } } }, cancellationToken: Ct);

        var withKeys = await fixture.Service.SendAsync(HttpMethod.Post, "jobs/create", new JsonObject { ["type"] = "export", ["outputBlobContainerUri"] = sas.AbsoluteUri, ["excludeKeysInExport"] = false }, cancellationToken: Ct);
        Assert.Equal("completed", (await WaitAsync(withKeys.Json!["jobId"]!.GetValue<string>()))["status"]!.GetValue<string>());
        var exported = (await LinesAsync(container, "devices.txt")).Single(l => l["id"]!.GetValue<string>() == id);
        var withoutKeys = await fixture.Service.SendAsync(HttpMethod.Post, "jobs/create", new JsonObject { ["type"] = "export", ["outputBlobContainerUri"] = sas.AbsoluteUri, ["outputBlobName"] = "nokeys.txt", ["excludeKeysInExport"] = true }, cancellationToken: Ct);
        Assert.Equal("completed", (await WaitAsync(withoutKeys.Json!["jobId"]!.GetValue<string>()))["status"]!.GetValue<string>());
        var exportedNoKeys = (await LinesAsync(container, "nokeys.txt")).Single(l => l["id"]!.GetValue<string>() == id);

        Assert.Equal(key, exported["authentication"]!["symmetricKey"]!["primaryKey"]!.GetValue<string>());
        Assert.Equal(3, exported["tags"]!["floor"]!.GetValue<int>());
        Assert.Equal("eco", exported["properties"]!["desired"]!["mode"]!.GetValue<string>());
        Assert.NotNull(exported["eTag"]);
        Assert.NotNull(exported["twinETag"]);
        Assert.Null(exportedNoKeys["authentication"]!["symmetricKey"]!["primaryKey"]);
        Assert.Equal(fixture.Emulator.Hub.DeviceIds().Count, (await LinesAsync(container, "nokeys.txt")).Count);
    }

    [Fact]
    public async Task Job_WithASasThatCannotWrite_Fails_WithAReasonAndNoSecret()
    {
        var (_, readOnly) = await ContainerAsync(BlobContainerSasPermissions.Read | BlobContainerSasPermissions.List);

        var created = await fixture.Service.SendAsync(HttpMethod.Post, "jobs/create", new JsonObject { ["type"] = "export", ["outputBlobContainerUri"] = readOnly.AbsoluteUri }, cancellationToken: Ct);
        var job = await WaitAsync(created.Json!["jobId"]!.GetValue<string>());

        Assert.Equal("failed", job["status"]!.GetValue<string>());
        var reason = job["failureReason"]!.GetValue<string>();
        Assert.Contains("403", reason, StringComparison.Ordinal);
        Assert.DoesNotContain("sig=", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Jobs_UnknownIdIs404JobNotFound_BadRequestsAre400_AndTheListHasTheJobs()
    {
        var unknown = await fixture.Service.SendAsync(HttpMethod.Get, $"jobs/{Guid.NewGuid()}", cancellationToken: Ct);
        var badType = await fixture.Service.SendAsync(HttpMethod.Post, "jobs/create", new JsonObject { ["type"] = "rebootDevice" }, cancellationToken: Ct);
        var noInput = await fixture.Service.SendAsync(HttpMethod.Post, "jobs/create", new JsonObject { ["type"] = "import", ["outputBlobContainerUri"] = "https://x.example/c?sig=1" }, cancellationToken: Ct);
        var list = await fixture.Service.SendAsync(HttpMethod.Get, "jobs", cancellationToken: Ct);

        Assert.Equal((HttpStatusCode.NotFound, 404002), (unknown.Status, unknown.Json!["errorCode"]!.GetValue<int>()));
        Assert.Equal(HttpStatusCode.BadRequest, badType.Status);
        Assert.Equal(HttpStatusCode.BadRequest, noInput.Status);
        Assert.Equal(HttpStatusCode.OK, list.Status);
        Assert.IsType<JsonArray>(list.Json);
    }

    [Fact]
    public async Task SecondJobWhileOneRuns_Is429ThrottlingMaxActiveJobCountExceeded()
    {
        await using var slow = EmulatorFixture.Start(_ => { });
        var (container, sas) = await ContainerAsync();
        // An import long enough to be running when the second job is asked for.
        var text = new StringBuilder();
        for (var i = 0; i < 20000; i++)
        {
            text.Append("{\"id\":\"many-").Append(i).Append("\"}\n");
        }

        await container.GetBlobClient("devices.txt").UploadAsync(BinaryData.FromString(text.ToString()), Ct);
        var first = await slow.Service.SendAsync(HttpMethod.Post, "jobs/create", new JsonObject { ["type"] = "import", ["inputBlobContainerUri"] = sas.AbsoluteUri, ["outputBlobContainerUri"] = sas.AbsoluteUri }, cancellationToken: Ct);
        var second = await slow.Service.SendAsync(HttpMethod.Post, "jobs/create", new JsonObject { ["type"] = "export", ["outputBlobContainerUri"] = sas.AbsoluteUri }, cancellationToken: Ct);
        var cancelled = await slow.Service.SendAsync(HttpMethod.Delete, $"jobs/{first.Json!["jobId"]!.GetValue<string>()}", cancellationToken: Ct);

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal(HttpStatusCode.TooManyRequests, second.Status);
        Assert.Equal(429004, second.Json!["errorCode"]!.GetValue<int>());
        Assert.NotNull(second.Header("Retry-After"));
        Assert.Equal("cancelled", cancelled.Json!["status"]!.GetValue<string>());
    }
}
