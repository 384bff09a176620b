using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Core.Service.Registry;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Service.Registry;

/// <summary>Import and export jobs end to end through the client: device files in blob storage (Azurite), the emulator's jobs.</summary>
public sealed class RegistryJobsTests(EmulatorFixture hub, AzuriteFixture azurite) : IClassFixture<EmulatorFixture>, IClassFixture<AzuriteFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<DeviceBlobContainer> ContainerAsync()
    {
        Assert.SkipWhen(azurite.Missing is not null, azurite.Missing ?? "");
        return await DeviceBlobContainer.FromConnectionStringAsync(azurite.ConnectionString, AzuriteFixture.NewContainerName(), TimeSpan.FromHours(1), cancellationToken: Ct);
    }

    [Fact]
    public async Task Import_FromCsv_CreatesTheDevices_ReRunCountsThemAsExisting_AndExportReadsThemBackWithKeysAndTags()
    {
        using var service = ServiceClientTests.NewClient(hub.Emulator);
        var container = await ContainerAsync();
        var prefix = hub.NewDeviceId("job");
        var key = SharedAccessKeys.Generate();
        var csv = $"DeviceId,Status,PrimaryKey,Tags\n{prefix}-1,,{key},\"{{\"\"line\"\":1}}\"\n{prefix}-2,disabled,,\n{prefix}-3,,,\n";
        var progress = new List<JobProgress>();

        ImportJobResult first;
        using (var file = new DeviceFile(RegistryImportMode.Create))
        {
            foreach (var row in DeviceCsv.Read(new StringReader(csv)))
            {
                file.Add(row.Device!, row.Line);
            }

            first = await RegistryJobs.ImportAsync(service, file, container, container, progress.Add, Ct);
        }

        ImportJobResult again;
        using (var file = new DeviceFile(RegistryImportMode.Create))
        {
            foreach (var row in DeviceCsv.Read(new StringReader(csv)))
            {
                file.Add(row.Device!, row.Line);
            }

            again = await RegistryJobs.ImportAsync(service, file, container, container, null, Ct);
        }

        var (exportJob, blob) = await RegistryJobs.ExportAsync(service, container, excludeKeys: false, null, Ct);
        var exported = new List<ServiceDevice>();
        await foreach (var device in RegistryJobs.ReadExportAsync(container, blob, service.HostName, Ct))
        {
            exported.Add(device);
        }

        Assert.Equal(("completed", 3L, 3L), (first.Job.Status, first.Devices, first.Succeeded));
        Assert.Empty(first.Failed);
        Assert.Equal((3L, 0L), (again.AlreadyExisting, again.Succeeded));
        Assert.Contains(progress, p => p.Stage.StartsWith("Uploading 3 devices", StringComparison.Ordinal));
        Assert.Contains(progress, p => p.Job?.Status == "completed");
        Assert.Equal("completed", exportJob.Status);
        var one = exported.Single(d => d.DeviceId == $"{prefix}-1");
        Assert.Equal(key, one.PrimaryKey);
        Assert.Equal(1, one.Tags!["line"]!.GetValue<int>());
        Assert.Equal("disabled", exported.Single(d => d.DeviceId == $"{prefix}-2").Status);
        Assert.NotNull(IoTHubConnectionString.Parse(exported.Single(d => d.DeviceId == $"{prefix}-3").ConnectionString).SharedAccessKey);
    }

    [Fact]
    public async Task Import_Delete_ReportsTheHubsPerDeviceErrors()
    {
        using var service = ServiceClientTests.NewClient(hub.Emulator);
        var container = await ContainerAsync();
        var (present, _) = hub.CreateDevice("job-rm");
        var missing = hub.NewDeviceId("job-none");

        using var file = new DeviceFile(RegistryImportMode.Delete);
        file.Add(new DeviceInput { DeviceId = present }, 1);
        file.Add(new DeviceInput { DeviceId = missing }, 2);
        var result = await RegistryJobs.ImportAsync(service, file, container, container, null, Ct);

        var failure = Assert.Single(result.Failed);
        Assert.Equal((missing, "DeviceNotFound", 404001), (failure.DeviceId, failure.ErrorCode, failure.NumericCode));
        Assert.Equal(1, result.Succeeded);
        Assert.Equal("DeviceNotFound", (await Assert.ThrowsAsync<IoTHubMqttException>(() => service.GetDeviceAsync(present, Ct))).ErrorId);
    }

    [Fact]
    public void DeviceFile_RejectsBadRowsAndDuplicates_AndIsPrivate()
    {
        using var file = new DeviceFile(RegistryImportMode.Create);
        file.Add(new DeviceInput { DeviceId = "ok-1" }, 1);

        var bad = Assert.Throws<IoTHubMqttException>(() => file.Add(new DeviceInput { DeviceId = "bad id" }, 2));
        var twice = Assert.Throws<IoTHubMqttException>(() => file.Add(new DeviceInput { DeviceId = "ok-1" }, 3));
        var line = Assert.Throws<IoTHubMqttException>(() => file.AddLine("{\"noid\":1}", 4));

        Assert.Equal(("InvalidDeviceId", "DeviceDefinedMultipleTimes", "DeviceIdMissing"), (bad.ErrorId, twice.ErrorId, line.ErrorId));
        Assert.Equal(1, file.Count);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file.Path));
        }
    }

    [Fact]
    public async Task Container_WithAWrongKey_IsStorageUnauthorized_AndSaysNoSecret()
    {
        Assert.SkipWhen(azurite.Missing is not null, azurite.Missing ?? "");
        var wrong = azurite.ConnectionString.Replace(AzuriteFixture.AccountKey, Convert.ToBase64String(new byte[64]), StringComparison.Ordinal);

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => DeviceBlobContainer.FromConnectionStringAsync(wrong, AzuriteFixture.NewContainerName(), TimeSpan.FromHours(1), cancellationToken: Ct));

        Assert.Equal("StorageUnauthorized", error.ErrorId);
        Assert.DoesNotContain("AccountKey", error.Message, StringComparison.Ordinal);
    }
}
