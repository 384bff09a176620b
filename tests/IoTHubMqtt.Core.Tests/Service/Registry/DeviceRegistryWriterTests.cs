using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Core.Service.Registry;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Service.Registry;

/// <summary>Creating, updating and removing streams of devices through bulk calls, against the emulator.</summary>
public sealed class DeviceRegistryWriterTests(EmulatorFixture hub) : IClassFixture<EmulatorFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IoTHubServiceClient NewClient() => ServiceClientTests.NewClient(hub.Emulator);

    private static async Task<List<DeviceOutcome>> RunAsync(IoTHubServiceClient service, DeviceRegistryWriterOptions options, params DeviceInput[] inputs)
    {
        using var writer = new DeviceRegistryWriter(service, options, Ct);
        foreach (var input in inputs)
        {
            writer.Add(input);
        }

        writer.Complete();
        var outcomes = new List<DeviceOutcome>();
        while (writer.NextTarget is not null)
        {
            await writer.WaitForNextAsync(Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
            outcomes.AddRange(writer.TakeReady());
        }

        return outcomes;
    }

    [Fact]
    public async Task Create_MixedInput_OneOutcomeEachInInputOrder_BadRowsNamed_KeysKnownForNewDevices()
    {
        using var service = NewClient();
        var (existing, existingKey) = hub.CreateDevice("w-old");
        var ids = Enumerable.Range(0, 4).Select(_ => hub.NewDeviceId("w-new")).ToList();

        var outcomes = await RunAsync(service, new DeviceRegistryWriterOptions { BatchSize = 3 },
            new DeviceInput { DeviceId = ids[0], Tags = JsonValue.Create("{\"site\":\"north\"}") },
            new DeviceInput { DeviceId = "" },
            new DeviceInput { DeviceId = existing },
            new DeviceInput { DeviceId = ids[1], Status = "sleeping" },
            new DeviceInput { DeviceId = ids[2], Status = "disabled" },
            new DeviceInput { DeviceId = ids[3], PrimaryKey = "not base64!" });

        Assert.Equal([RegistryAction.Created, RegistryAction.Failed, RegistryAction.Unchanged, RegistryAction.Failed, RegistryAction.Created, RegistryAction.Failed],
            outcomes.Select(o => o.Action));
        Assert.Equal(["DeviceIdMissing", "InvalidDeviceStatus", "KeyNotBase64"], outcomes.Where(o => o.Error is not null).Select(o => ((IoTHubMqttException)o.Error!).ErrorId));
        Assert.Equal("input 2", outcomes[1].Target);
        Assert.Equal(existingKey, outcomes[2].Device!.PrimaryKey);
        var created = IoTHubConnectionString.Parse(outcomes[0].Device!.ConnectionString);
        Assert.Equal(hub.Emulator.GetDevice(ids[0]).PrimaryKey, created.SharedAccessKey);
        Assert.Equal("north", (await service.GetTwinAsync(ids[0], Ct)).Tags!["site"]!.GetValue<string>());
        Assert.Equal("disabled", (await service.GetDeviceAsync(ids[2], Ct)).Status);
    }

    [Fact]
    public async Task CreateOrUpdate_UpdatesOnlyWhatDiffers_KeepsKeysNotGiven_AndReportsUnchanged()
    {
        using var service = NewClient();
        var (a, keyA) = hub.CreateDevice("w-upd");
        var (b, _) = hub.CreateDevice("w-same");
        var newKey = SharedAccessKeys.Generate();
        var c = hub.NewDeviceId("w-fresh");

        var outcomes = await RunAsync(service, new DeviceRegistryWriterOptions { Mode = RegistryWriteMode.CreateOrUpdate },
            new DeviceInput { DeviceId = a, Status = "disabled" },
            new DeviceInput { DeviceId = b, SecondaryKey = newKey },
            new DeviceInput { DeviceId = b + "-x", PrimaryKey = newKey },
            new DeviceInput { DeviceId = c });
        var again = await RunAsync(service, new DeviceRegistryWriterOptions { Mode = RegistryWriteMode.CreateOrUpdate }, new DeviceInput { DeviceId = a, Status = "disabled" });

        Assert.Equal([RegistryAction.Updated, RegistryAction.Updated, RegistryAction.Created, RegistryAction.Created], outcomes.Select(o => o.Action));
        Assert.Equal(RegistryAction.Unchanged, Assert.Single(again).Action);
        var readA = await service.GetDeviceAsync(a, Ct);
        Assert.Equal(("disabled", keyA), (readA.Status, readA.PrimaryKey));
        Assert.Equal(newKey, (await service.GetDeviceAsync(b, Ct)).SecondaryKey);
    }

    [Fact]
    public async Task SameDeviceTwiceInOneRun_GoesInTwoCalls_InOrder()
    {
        using var service = NewClient();
        var id = hub.NewDeviceId("w-twice");

        var outcomes = await RunAsync(service, new DeviceRegistryWriterOptions { Mode = RegistryWriteMode.CreateOrUpdate },
            new DeviceInput { DeviceId = id }, new DeviceInput { DeviceId = hub.NewDeviceId("w-other") }, new DeviceInput { DeviceId = id, Status = "disabled" });

        Assert.Equal([RegistryAction.Created, RegistryAction.Created, RegistryAction.Updated], outcomes.Select(o => o.Action));
        Assert.Equal("disabled", (await service.GetDeviceAsync(id, Ct)).Status);
    }

    [Fact]
    public async Task Remove_RemovesInBulk_AbsentIsNotAnError_StaleETagIsPreconditionFailedWithTheHubsCode()
    {
        using var service = NewClient();
        var (a, _) = hub.CreateDevice("w-rm");
        var (b, _) = hub.CreateDevice("w-rm");
        var missing = hub.NewDeviceId("w-gone");

        var outcomes = await RunAsync(service, new DeviceRegistryWriterOptions { Mode = RegistryWriteMode.Remove },
            new DeviceInput { DeviceId = a }, new DeviceInput { DeviceId = b, ETag = "stale" }, new DeviceInput { DeviceId = missing });
        var forced = await RunAsync(service, new DeviceRegistryWriterOptions { Mode = RegistryWriteMode.Remove, IgnoreETags = true }, new DeviceInput { DeviceId = b, ETag = "stale" });

        Assert.Equal([RegistryAction.Removed, RegistryAction.Failed, RegistryAction.Absent], outcomes.Select(o => o.Action));
        var error = Assert.IsType<HubDeviceException>(outcomes[1].Error);
        Assert.Equal(("PreconditionFailed", "PreconditionFailed"), (error.ErrorId, error.HubErrorCode));
        Assert.Contains("412001", error.Message, StringComparison.Ordinal);
        Assert.Equal(RegistryAction.Removed, Assert.Single(forced).Action);
        foreach (var id in new[] { a, b })
        {
            Assert.Equal("DeviceNotFound", (await Assert.ThrowsAsync<IoTHubMqttException>(() => service.GetDeviceAsync(id, Ct))).ErrorId);
        }
    }

    [Fact]
    public void DeviceCsv_QuotedFieldsAndBadRows_AreReadWithTheirLines()
    {
        var csv = "SerialNumber,Status,Tags\r\nsn-1,enabled,\"{\"\"site\"\":\"\"a,b\"\"}\"\nsn-2,disabled\n\n\"sn-3\",,\n";

        var rows = DeviceCsv.Read(new StringReader(csv)).ToList();

        Assert.Equal([2, 3, 5], rows.Select(r => r.Line));
        Assert.Equal("sn-1", rows[0].Device!.DeviceId);
        Assert.Equal("a,b", rows[0].Device!.Validate(1).Tags!["site"]!.GetValue<string>());
        Assert.Equal("CsvRowMalformed", rows[1].Error!.ErrorId);
        Assert.Equal("line 3", rows[1].Error!.Target);
        Assert.Equal("sn-3", rows[2].Device!.DeviceId);
    }
}
