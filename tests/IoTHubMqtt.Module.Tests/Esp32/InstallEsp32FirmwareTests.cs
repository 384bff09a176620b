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
        var data = new byte[5000];
        new Random(4).NextBytes(data);
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
        var deployment = files.Write("app.pe.bin", Enumerable.Range(0, 3000).Select(i => (byte)i).ToArray());

        var result = ps.Invoke("Install-Esp32Firmware -Port $port -Package $pkg -DeploymentImage $dep", PowerShellSession.Vars(("port", sim.Url), ("pkg", package), ("dep", deployment)));

        Assert.Empty(result.AllErrors);
        Assert.Equal(["bootloader", "partition-table", "nanoCLR", "deployment"], result.Output.Select(o => (string)Prop(o, "Name")!));
        Assert.Equal([0x1000u, 0x8000u, 0x10000u, 0x1C0000u], result.Output.Select(o => (uint)Prop(o, "Offset")!));
        Assert.Equal(File.ReadAllBytes(deployment), sim.Simulator.Flash.AsSpan(0x1C0000, 3000).ToArray());
    }

    [Fact]
    public async Task DeploymentImageAlone_PartitionTableReadFromBoard()
    {
        await using var sim = new SimulatorServer();
        Esp32Files.PartitionTable(0x1A0000, 0x20000).CopyTo(sim.Simulator.Flash, 0x8000);
        var deployment = files.Write("app.bin", Enumerable.Repeat((byte)0x42, 2048).ToArray());

        var result = ps.Invoke("Install-Esp32Firmware -Port $port -DeploymentImage $dep", PowerShellSession.Vars(("port", sim.Url), ("dep", deployment)));

        Assert.Empty(result.AllErrors);
        Assert.Equal(0x1A0000u, (uint)Prop(Assert.Single(result.Output), "Offset")!);
        Assert.All(sim.Simulator.Flash.AsSpan(0x1A0000, 2048).ToArray(), b => Assert.Equal(0x42, b));
    }

    [Fact]
    public async Task WhatIf_WritesNothing()
    {
        await using var sim = new SimulatorServer();
        files.Write("app.bin", Esp32Files.App(0, 8192, 6));

        var result = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=app.bin' -Erase -WhatIf"), PowerShellSession.Vars(("port", sim.Url)));

        Assert.Empty(result.Output);
        Assert.Equal(0, sim.Simulator.CountOf(0x10));
        Assert.Equal(0, sim.Simulator.CountOf(0xD0));
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
        files.Write("app.bin", new byte[16]);

        var result = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=app.bin'"), PowerShellSession.Vars(("port", sim.Url)));

        var error = Assert.Single(result.AllErrors);
        Assert.Equal($"Esp32SyncFailed,{Cmd}", error.FullyQualifiedErrorId);
        Assert.Contains("BOOT", error.ErrorDetails.RecommendedAction, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChipMismatchAndTooLarge_ClearErrors()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { FlashSize = 1024 * 1024 });
        files.Write("big.bin", new byte[0x20000]);

        var mismatch = ps.Invoke(In("Install-Esp32Firmware -Port $port -Image '0x10000=big.bin' -Chip Esp32C6"), PowerShellSession.Vars(("port", sim.Url)));
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
}
