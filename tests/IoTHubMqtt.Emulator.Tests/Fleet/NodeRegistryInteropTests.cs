using System.Text;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests.Fleet;

/// <summary>
/// The emulator's bulk registry call and import/export jobs as the official Azure IoT Node.js service SDK uses them
/// (azure-iothub Registry: addDevices, updateDevices, removeDevices, exportDevicesToBlob, importDevicesFromBlob, getJob,
/// listJobs; tests/interop/registry-bulk.js). Skipped, with the reason, when node or tests/interop/node_modules is missing.
/// </summary>
public sealed class NodeRegistryInteropTests(EmulatorFixture fixture, AzuriteFixture azurite) : IClassFixture<EmulatorFixture>, IClassFixture<AzuriteFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<List<JsonObject>> RunAsync(params string[] arguments)
    {
        Assert.SkipWhen(NodeInterop.Node is null, "node is not installed: the Node.js service SDK interop tests need Node.js (.ci/run installs nodejs and npm).");
        Assert.SkipWhen(!Directory.Exists(Path.Combine(NodeInterop.Directory, "node_modules", "azure-iothub")),
            "tests/interop/node_modules is missing: run `npm ci --prefix tests/interop` (.ci/run does).");
        using var process = ExternalProcess.Start(NodeInterop.Node!, new Dictionary<string, string> { ["NODE_EXTRA_CA_CERTS"] = fixture.Emulator.CaCertificatePath },
            [Path.Combine(NodeInterop.Directory, "registry-bulk.js"), .. arguments]);
        var (exit, output, error) = await process.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(exit == 0, $"registry-bulk.js exited {exit}: {output} {error}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
    }

    private static JsonObject Event(List<JsonObject> events, string name) => events.Single(e => e["event"]!.GetValue<string>() == name);

    private static List<(string DeviceId, string Code)> Errors(JsonObject e) =>
        e["result"]!["errors"]!.AsArray().Select(x => (x!["deviceId"]!.GetValue<string>(), x["errorCode"]!.GetValue<string>())).ToList();

    [Fact]
    public async Task NodeSdk_AddUpdateRemoveDevices_GetsTheHubsBulkResults()
    {
        var (existing, _) = fixture.CreateDevice("node-old");
        var prefix = fixture.NewDeviceId("node-bulk");

        var events = await RunAsync("bulk", fixture.Emulator.OwnerConnectionString, fixture.Emulator.HttpsPort.ToString(System.Globalization.CultureInfo.InvariantCulture), prefix, "30", existing);

        var added = Event(events, "added");
        Assert.False(added["result"]!["isSuccessful"]!.GetValue<bool>());
        Assert.Equal([(existing, "DeviceAlreadyExists")], Errors(added));
        Assert.True(Event(events, "updated")["result"]!["isSuccessful"]!.GetValue<bool>());
        Assert.Equal("disabled", Event(events, "read")["status"]!.GetValue<string>());
        Assert.Equal([($"{prefix}-0", "PreconditionFailed")], Errors(Event(events, "stale")));
        Assert.Equal([($"{prefix}-missing", "DeviceNotFound")], Errors(Event(events, "removed")));
        Assert.DoesNotContain(fixture.Emulator.Hub.DeviceIds(), id => id.StartsWith(prefix, StringComparison.Ordinal));
    }

    [Fact]
    public async Task NodeSdk_ExportAndImportJobs_RunAgainstBlobStorage_AndGetJobFollowsThem()
    {
        Assert.SkipWhen(azurite.Missing is not null, azurite.Missing ?? "");
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(AzuriteFixture.NewContainerName("node"));
        await container.CreateAsync(cancellationToken: Ct);
        var sas = container.GenerateSasUri(BlobContainerSasPermissions.All, DateTimeOffset.UtcNow.AddHours(1));
        var (present, key) = fixture.CreateDevice("node-exp");
        // The SDK exports into the container (devices.txt), then imports that same file back (createOrUpdate by default).
        var events = await RunAsync("jobs", fixture.Emulator.OwnerConnectionString, fixture.Emulator.HttpsPort.ToString(System.Globalization.CultureInfo.InvariantCulture), sas.AbsoluteUri);

        var exportDone = Event(events, "exportDone")["job"]!;
        Assert.Equal(("export", "completed", 100), (exportDone["type"]!.GetValue<string>(), exportDone["status"]!.GetValue<string>(), exportDone["progress"]!.GetValue<int>()));
        Assert.Equal("enqueued", Event(events, "exportStarted")["job"]!["status"]!.GetValue<string>());
        var importDone = Event(events, "importDone")["job"]!;
        Assert.Equal(("import", "completed"), (importDone["type"]!.GetValue<string>(), importDone["status"]!.GetValue<string>()));
        // The import applied what the export wrote: every device again, with the same keys, and nothing failed.
        Assert.Equal(key, fixture.Emulator.GetDevice(present).PrimaryKey);
        var exported = Encoding.UTF8.GetString((await container.GetBlobClient("devices.txt").DownloadContentAsync(Ct)).Value.Content.ToArray());
        Assert.Contains($"\"id\":\"{present}\"", exported, StringComparison.Ordinal);
        Assert.Empty(Encoding.UTF8.GetString((await container.GetBlobClient("importErrors.log").DownloadContentAsync(Ct)).Value.Content.ToArray()).Trim());
        Assert.Contains(exportDone["jobId"]!.GetValue<string>(), Event(events, "listed")["jobIds"]!.AsArray().Select(j => j!.GetValue<string>()));
    }
}
