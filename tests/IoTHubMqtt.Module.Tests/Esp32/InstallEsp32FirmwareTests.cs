using System.Management.Automation;
using IoTHubMqtt.Esp32.Simulator;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Esp32;

public sealed class InstallEsp32FirmwareTests : IDisposable
{
    private const string Cmd = "IoTHubMqtt.Commands.Esp32.InstallEsp32FirmwareCommand";
    private readonly PowerShellSession ps = new();
    private readonly Esp32Files files = new();

    public void Dispose()
    {
        ps.Dispose();
        files.Dispose();
    }

    private string In(string script) => $"[void]$ExecutionContext.SessionState.Path.SetLocation('{files.Root}'); {script}";

    private static object? Prop(PSObject o, string name) => o.Properties[name].Value;

    [Fact]
    public async Task Image_Hashtable_OneVerifiedResultPerRegion_WithProgress()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32C3 });
        var app = Esp32Files.App(5, 100 * 1024, 3);
        var data = Esp32Files.App(5, 5008, 4);
        files.Write("app.bin", app);
        files.Write("data.bin", data);

        var result = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image @{0x10000='app.bin'; 0x300000='data.bin'} -Verbose"), PowerShellSession.Vars(("port", sim.Url)));

        Assert.Empty(result.AllErrors);
        Assert.Equal(["app.bin", "data.bin"], result.Output.Select(o => (string)Prop(o, "Name")!));
        Assert.All(result.Output, o => Assert.True((bool)Prop(o, "Verified")!));
        Assert.All(result.Output, o => Assert.Equal("Written", Prop(o, "Status")!.ToString()));
        Assert.Equal(app, sim.Simulator.Flash.AsSpan(0x10000, app.Length).ToArray());
        Assert.Equal(data, sim.Simulator.Flash.AsSpan(0x300000, data.Length).ToArray());
        Assert.Contains(result.Progress, p => p.StatusDescription.Contains("KB/s", StringComparison.Ordinal) && p.StatusDescription.Contains("app.bin", StringComparison.Ordinal));
        Assert.Contains(result.Verbose, v => v.Message.Contains("ESP32-C3", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SecondRun_Skipped_ForceRewrites_StringSpecsAccepted()
    {
        await using var sim = new SimulatorServer();
        files.Write("app.bin", Esp32Files.App(0, 40 * 1024, 5));
        ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x20000=app.bin'"), PowerShellSession.Vars(("port", sim.Url)));
        var writes = sim.Simulator.CountOf(0x10);

        var again = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x20000=app.bin'"), PowerShellSession.Vars(("port", sim.Url)));
        Assert.Equal("Skipped", Prop(Assert.Single(again.Output), "Status")!.ToString());
        Assert.Equal(writes, sim.Simulator.CountOf(0x10));

        var forced = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x20000=app.bin' -Force"), PowerShellSession.Vars(("port", sim.Url)));
        Assert.Equal("Written", Prop(Assert.Single(forced.Output), "Status")!.ToString());
    }

    [Fact]
    public async Task Package_WithDeploymentImage_WritesFourRegions_DeploymentAtTableOffset()
    {
        await using var sim = new SimulatorServer();
        var package = files.Package(0, 0x1C0000);
        var deployment = files.Write("app.pe.bin", Esp32Files.Deployment("mscorlib", "App"));

        var result = ps.Invoke("Install-Esp32Firmware -Port $port -Package $pkg -DeploymentImage $dep", PowerShellSession.Vars(("port", sim.Url), ("pkg", package), ("dep", deployment)));

        Assert.Empty(result.AllErrors);
        Assert.Equal(["bootloader", "partition-table", "nanoCLR", "deployment"], result.Output.Select(o => (string)Prop(o, "Name")!));
        Assert.Equal([0x1000u, 0x8000u, 0x10000u, 0x1C0000u], result.Output.Select(o => (uint)Prop(o, "Offset")!));
        var expected = File.ReadAllBytes(deployment);
        Assert.Equal(expected, sim.Simulator.Flash.AsSpan(0x1C0000, expected.Length).ToArray());
    }

    [Fact]
    public async Task DeploymentImageAlone_PartitionTableReadFromBoard()
    {
        await using var sim = new SimulatorServer();
        Esp32Files.PartitionTable(0x1A0000, 0x20000).CopyTo(sim.Simulator.Flash, 0x8000);
        var image = Esp32Files.Deployment("App");
        var deployment = files.Write("app.bin", image);

        var result = ps.Invoke("Install-Esp32Firmware -Port $port -DeploymentImage $dep", PowerShellSession.Vars(("port", sim.Url), ("dep", deployment)));

        Assert.Empty(result.AllErrors);
        Assert.Equal(0x1A0000u, (uint)Prop(Assert.Single(result.Output), "Offset")!);
        Assert.Equal(image, sim.Simulator.Flash.AsSpan(0x1A0000, image.Length).ToArray());
    }

    [Fact]
    public async Task WhatIf_WritesNothing()
    {
        await using var sim = new SimulatorServer();
        files.Write("app.bin", Esp32Files.App(0, 8192, 6));

        var result = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=app.bin' -Erase -WhatIf"), PowerShellSession.Vars(("port", sim.Url)));

        Assert.Empty(result.AllErrors);
        Assert.Empty(result.Output);
        Assert.Equal(0, sim.Simulator.CountOf(0x08)); // the board was never touched: no reset, no sync, left running its app
        Assert.Equal(0, sim.Simulator.CountOf(0x10));
        Assert.Equal(0, sim.Simulator.CountOf(0xD0));
        var text = ps.Render(In("Install-Esp32Firmware -Port $port -Image '0x10000=app.bin' -Erase -WhatIf"), PowerShellSession.Vars(("port", sim.Url)));
        Assert.Contains("Erase the whole flash, then write app.bin @ 0x10000", text, StringComparison.Ordinal);
        Assert.Equal(0, sim.Simulator.CountOf(0x08));
    }

    [Fact]
    public async Task ImageForAnotherChip_ErrorWithFix_NothingWritten()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32S3 });
        files.Write("app.bin", Esp32Files.App(0, 8192, 7));

        var result = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=app.bin'"), PowerShellSession.Vars(("port", sim.Url)));

        var error = Assert.Single(result.AllErrors);
        Assert.Equal($"Esp32ImageChipMismatch,{Cmd}", error.FullyQualifiedErrorId);
        Assert.Contains("ESP32-S3", error.ErrorDetails.RecommendedAction, StringComparison.Ordinal);
        Assert.Empty(result.Output);
        Assert.Equal(0, sim.Simulator.CountOf(0x10));
    }

    [Fact]
    public async Task SilentWriteFailure_Md5MismatchError_NoSuccessObject()
    {
        var options = new SimulatorOptions();
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.SilentWriteFailure, 0x10, 0));
        await using var sim = new SimulatorServer(options);
        files.Write("app.bin", Esp32Files.App(0, 16 * 1024, 8));

        var result = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=app.bin'"), PowerShellSession.Vars(("port", sim.Url)));

        var error = Assert.Single(result.AllErrors);
        Assert.Equal($"Esp32Md5Mismatch,{Cmd}", error.FullyQualifiedErrorId);
        Assert.Contains("0x10000", error.Exception.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCategory.WriteError, error.CategoryInfo.Category);
        Assert.Empty(result.Output);
    }

    [Fact]
    public async Task LostBlockResponse_RetriedWithinBounds_ResultShowsAttempts()
    {
        var options = new SimulatorOptions();
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.DropResponse, 0x11, 1));
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.CorruptResponse, 0x13, 1));
        await using var sim = new SimulatorServer(options);
        var app = Esp32Files.App(0, 24 * 1024, 11);
        files.Write("app.bin", app);

        var result = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=app.bin' -Verbose"), PowerShellSession.Vars(("port", sim.Url)));

        Assert.Empty(result.AllErrors);
        var region = Assert.Single(result.Output);
        Assert.Equal(2, (int)Prop(region, "Attempts")!);
        Assert.Equal(app, sim.Simulator.Flash.AsSpan(0x10000, app.Length).ToArray());
        Assert.Contains(result.Verbose, v => v.Message.Contains("Re-syncing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SecondRegionFails_FirstRegionStillReported_ThenError()
    {
        var options = new SimulatorOptions();
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.SilentWriteFailure, 0x10, 2));
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.SilentWriteFailure, 0x10, 3));
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.SilentWriteFailure, 0x10, 4));
        await using var sim = new SimulatorServer(options);
        files.Write("a.bin", Esp32Files.App(0, 8192, 12));
        files.Write("b.bin", Esp32Files.App(0, 8192, 13));

        var result = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=a.bin', '0x20000=b.bin'"), PowerShellSession.Vars(("port", sim.Url)));

        Assert.Equal("a.bin", Prop(Assert.Single(result.Output), "Name"));
        var error = Assert.Single(result.AllErrors);
        Assert.Equal($"Esp32Md5Mismatch,{Cmd}", error.FullyQualifiedErrorId);
        Assert.Contains("'b.bin' at 0x20000", error.Exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoSync_ErrorTellsToHoldBoot()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { IgnoreFirstSyncs = int.MaxValue });
        files.Write("app.bin", Esp32Files.App(0, 4096, 14));

        var result = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=app.bin'"), PowerShellSession.Vars(("port", sim.Url)));

        var error = Assert.Single(result.AllErrors);
        Assert.Equal($"Esp32SyncFailed,{Cmd}", error.FullyQualifiedErrorId);
        Assert.Contains("BOOT", error.ErrorDetails.RecommendedAction, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChipMismatchAndTooLarge_ClearErrors()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { FlashSize = 1024 * 1024 });
        files.Write("big.bin", Esp32Files.App(0, 0x20000, 15));
        files.Write("c6.bin", Esp32Files.App(13, 0x2000, 16));

        var mismatch = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=c6.bin' -Chip Esp32C6"), PowerShellSession.Vars(("port", sim.Url)));
        Assert.Equal($"Esp32ChipMismatch,{Cmd}", Assert.Single(mismatch.AllErrors).FullyQualifiedErrorId);

        var large = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0xF0000=big.bin'"), PowerShellSession.Vars(("port", sim.Url)));
        Assert.Equal($"Esp32ImageTooLarge,{Cmd}", Assert.Single(large.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void BadImageSpec_And_MissingFile_Errors()
    {
        var spec = ps.Invoke(In("Install-Esp32Firmware -Port socket://127.0.0.1:1 -Image 'nonsense'"));
        Assert.Equal($"Esp32InvalidImageSpec,{Cmd}", Assert.Single(spec.AllErrors).FullyQualifiedErrorId);

        var missing = ps.Invoke(In("Install-Esp32Firmware -Port socket://127.0.0.1:1 -Image '0x1000=does-not-exist.bin'"));
        Assert.Equal($"Esp32ImageNotFound,{Cmd}", Assert.Single(missing.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public async Task DefaultView_ShowsRegionOffsetStatus()
    {
        await using var sim = new SimulatorServer();
        files.Write("app.bin", Esp32Files.App(0, 4096, 9));

        var text = ps.Render($"[void]$ExecutionContext.SessionState.Path.SetLocation('{files.Root}'); Install-Esp32Firmware -Port '{sim.Url}' -Image '0x10000=app.bin'");

        Assert.Contains("Region", text, StringComparison.Ordinal);
        Assert.Contains("0x10000", text, StringComparison.Ordinal);
        Assert.Contains("Written", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RawData_RefusedAsAnImage_WrittenWithRaw()
    {
        await using var sim = new SimulatorServer();
        var data = new byte[5000];
        new Random(4).NextBytes(data);
        data[0] = 0x12;
        files.Write("littlefs.bin", data);

        var refused = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x300000=littlefs.bin'"), PowerShellSession.Vars(("port", sim.Url)));
        var error = Assert.Single(refused.AllErrors);
        Assert.Equal($"Esp32ImageInvalid,{Cmd}", error.FullyQualifiedErrorId);
        Assert.Contains("littlefs.bin", error.Exception.Message, StringComparison.Ordinal);
        Assert.Contains("-Raw", error.ErrorDetails.RecommendedAction, StringComparison.Ordinal);
        Assert.Equal(0, sim.Simulator.CountOf(0x08));

        var raw = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x300000=littlefs.bin' -Raw"), PowerShellSession.Vars(("port", sim.Url)));
        Assert.Empty(raw.AllErrors);
        Assert.Equal(data, sim.Simulator.Flash.AsSpan(0x300000, data.Length).ToArray());
    }

    [Fact]
    public async Task BrokenFiles_EachRefusedBeforeThePortOpens_FlashUnchanged()
    {
        await using var sim = new SimulatorServer();
        var package = files.Package(0, 0x1C0000);
        files.Write("html.bin", System.Text.Encoding.ASCII.GetBytes("<html><body>404 Not Found</body></html>"));
        files.Write("empty.bin", []);
        files.Write("app.bin", Esp32Files.App(0, 4096, 17));
        foreach (var file in Directory.GetFiles(package))
        {
            files.Write("pkg2/" + Path.GetFileName(file), File.ReadAllBytes(file));
        }

        files.Write("pkg2/nanoCLR.bin", System.Text.Encoding.ASCII.GetBytes("<html><body>404 Not Found</body></html>"));
        var before = sim.Simulator.Flash.ToArray();
        (string Script, string ErrorId)[] cases =
        [
            ("Install-Esp32Firmware -Port $port -Image '0x10000=html.bin'", "Esp32ImageInvalid"),
            ("Install-Esp32Firmware -Port $port -Image '0x10000=empty.bin'", "Esp32EmptyImage"),
            ("Install-Esp32Firmware -Port $port -Image '0x10800=app.bin'", "Esp32RegionNotAligned"),
            ("Install-Esp32Firmware -Port $port -DeploymentImage 'empty.bin'", "Esp32EmptyImage"),
            ("Install-Esp32Firmware -Port $port -DeploymentImage 'app.bin'", "NanoFrameworkDeploymentImageInvalid"),
            ("Install-Esp32Firmware -Port $port -Package pkg2", "Esp32ImageInvalid"),
        ];

        foreach (var (script, errorId) in cases)
        {
            var result = ps.Invoke(In(script), PowerShellSession.Vars(("port", sim.Url)));
            Assert.True(result.AllErrors.Count() == 1, script + ": " + string.Join("; ", result.AllErrors.Select(e => e.FullyQualifiedErrorId + " " + e)));
            Assert.Equal($"{errorId},{Cmd}", result.AllErrors.Single().FullyQualifiedErrorId);
        }

        Assert.Equal(0, sim.Simulator.CountOf(0x08));
        Assert.Equal(before, sim.Simulator.Flash);
    }

    [Fact]
    public async Task Erase_IsHighImpact_ConfirmFalseErasesThenWrites()
    {
        await using var sim = new SimulatorServer();
        sim.Simulator.Flash.AsSpan(0x200000, 16).Fill(0x42);
        files.Write("app.bin", Esp32Files.App(0, 8192, 18));

        // Without -Confirm:$false the erase must be confirmed; a host that cannot ask refuses instead of erasing.
        var asked = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=app.bin' -Erase"), PowerShellSession.Vars(("port", sim.Url)));
        Assert.NotEmpty(asked.AllErrors);
        Assert.Equal(0, sim.Simulator.CountOf(0xD0));
        Assert.Equal(0, sim.Simulator.CountOf(0x08));

        var erased = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=app.bin' -Erase -Confirm:$false"), PowerShellSession.Vars(("port", sim.Url)));
        Assert.Empty(erased.AllErrors);
        Assert.Equal(1, sim.Simulator.CountOf(0xD0));
        Assert.All(sim.Simulator.Flash.AsSpan(0x200000, 16).ToArray(), b => Assert.Equal(0xFF, b));
    }
}
