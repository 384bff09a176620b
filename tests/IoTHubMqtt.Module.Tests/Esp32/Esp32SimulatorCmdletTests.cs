using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Esp32;

/// <summary>Start-Esp32Simulator / Stop-Esp32Simulator: the shipped simulator, driven by the module's own flashing cmdlets.</summary>
public sealed class Esp32SimulatorCmdletTests : IDisposable
{
    private readonly PowerShellSession ps = new();
    private readonly Esp32Files files = new();

    public void Dispose()
    {
        ps.Invoke("Get-Variable sim -ValueOnly -ErrorAction Ignore | Stop-Esp32Simulator");
        ps.Dispose();
        files.Dispose();
    }

    [Fact]
    public void StartedSimulator_FlashedThroughThePipeline_FlashDumpShowsThePackage()
    {
        var package = files.Package(5, 0x1C0000);

        var result = ps.Invoke("""
            $sim = Start-Esp32Simulator -Chip ESP32C3 -FlashSize 8MB
            $sim.Port
            $regions = $sim | Install-Esp32Firmware -Package $pkg
            $regions.Name -join ','
            $sim.ReadFlash(0x0, 1)[0]
            $sim.CountOf('FLASH_DEFL_DATA') -gt 0
            $sim.StubRunning
            """, PowerShellSession.Vars(("pkg", package)));

        Assert.Empty(result.AllErrors);
        var output = result.Output.Select(o => o.BaseObject.ToString()).ToList();
        Assert.Matches("^socket://127\\.0\\.0\\.1:[0-9]+$", output[0]);
        Assert.Equal("bootloader,partition-table,nanoCLR", output[1]);
        Assert.Equal("233", output[2]); // 0xE9: the C3's bootloader at 0x0
        Assert.Equal("True", output[3]);
    }

    [Fact]
    public void Faults_AreInjected_AndBadOnesRefused()
    {
        var result = ps.Invoke("""
            $sim = Start-Esp32Simulator -Chip Esp32 -Fault @{ Kind = 'DropResponse'; Command = 'FlashDeflData'; Occurrence = 1 }, @{ Kind = 'CorruptResponse'; Command = 0x13; Occurrence = 1 }
            $sim.CountOf('SYNC')
            """);
        Assert.Empty(result.AllErrors);
        files.Write("app.bin", Esp32Files.App(0, 16 * 1024, 30));

        var flashed = ps.Invoke($"[void]$ExecutionContext.SessionState.Path.SetLocation('{files.Root}'); ($sim | Install-Esp32Firmware -Image '0x10000=app.bin').Attempts");
        Assert.Empty(flashed.AllErrors);
        Assert.Equal(2, (int)Assert.Single(flashed.Output).BaseObject);

        var bad = ps.Invoke("Start-Esp32Simulator -Fault @{ Kind = 'DropResponse'; Command = 'NOT_A_COMMAND' }");
        Assert.Equal("Esp32SimulatorFaultInvalid,IoTHubMqtt.Commands.Esp32.StartEsp32SimulatorCommand", Assert.Single(bad.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void Stop_WithoutArgument_StopsTheLastOne_ThenThereIsNoneLeft()
    {
        var result = ps.Invoke("""
            $first = Start-Esp32Simulator
            $second = Start-Esp32Simulator -Chip Esp32S3 -Rfc2217
            $second.Port -like 'rfc2217://*'
            Stop-Esp32Simulator
            $second.IsRunning, $first.IsRunning
            Stop-Esp32Simulator
            """);

        Assert.Empty(result.AllErrors);
        Assert.Equal(["True", "False", "True"], result.Output.Select(o => o.BaseObject.ToString()));

        var none = ps.Invoke("Stop-Esp32Simulator");
        Assert.Equal("Esp32SimulatorNotRunning,IoTHubMqtt.Commands.Esp32.StopEsp32SimulatorCommand", Assert.Single(none.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void WhatIf_StartsNothing()
    {
        var result = ps.Invoke("$null -eq (Start-Esp32Simulator -WhatIf)");

        Assert.Empty(result.AllErrors);
        Assert.Equal(true, Assert.Single(result.Output).BaseObject);
    }
}
