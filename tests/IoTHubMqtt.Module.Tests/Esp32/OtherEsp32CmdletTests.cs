using IoTHubMqtt.Esp32.Simulator;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Esp32;

public sealed class OtherEsp32CmdletTests : IDisposable
{
    private readonly PowerShellSession ps = new();
    private readonly Esp32Files files = new();

    public void Dispose()
    {
        ps.Dispose();
        files.Dispose();
    }

    [Fact]
    public async Task GetEsp32Device_Port_ReportsChipMacFlash_AndView()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32S3, FlashSize = 16 * 1024 * 1024, Mac = [0xDC, 0x54, 0x75, 0x01, 0x02, 0x03] });

        var result = ps.Invoke("Get-Esp32Device -Port $port", PowerShellSession.Vars(("port", sim.Url)));

        var device = Assert.Single(result.Output);
        Assert.Equal("ESP32-S3", device.Properties["ChipName"].Value);
        Assert.Equal("dc:54:75:01:02:03", device.Properties["MacAddress"].Value);
        Assert.Equal(16L * 1024 * 1024, device.Properties["FlashSize"].Value);
        Assert.Equal(sim.Url, device.Properties["Port"].Value);
        var text = ps.Render("Get-Esp32Device -Port $port");
        Assert.Contains("16MB", text, StringComparison.Ordinal);
        Assert.Contains("ESP32-S3", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetEsp32Device_PipelineOfPorts_BadOneIsNonTerminating()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32C6 });

        var result = ps.Invoke("$port, 'socket://127.0.0.1:1', $port | Get-Esp32Device", PowerShellSession.Vars(("port", sim.Url)));

        Assert.Equal(2, result.Output.Count);
        var error = Assert.Single(result.Errors);
        Assert.Equal("Esp32PortNotFound,IoTHubMqtt.Commands.Esp32.GetEsp32DeviceCommand", error.FullyQualifiedErrorId);
    }

    [Fact]
    public async Task ClearEsp32Flash_Region_ThenWhole_WhatIfErasesNothing()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { FlashSize = 2 * 1024 * 1024 });
        sim.Simulator.Flash.AsSpan().Clear();

        ps.Invoke("Clear-Esp32Flash -Port $port -WhatIf", PowerShellSession.Vars(("port", sim.Url)));
        Assert.Equal(0, sim.Simulator.Flash[0]);

        var region = ps.Invoke("Clear-Esp32Flash -Port $port -Offset 0x10000 -Length 0x2000 -Confirm:$false", PowerShellSession.Vars(("port", sim.Url)));
        Assert.Empty(region.AllErrors);
        Assert.All(sim.Simulator.Flash.AsSpan(0x10000, 0x2000).ToArray(), b => Assert.Equal(0xFF, b));
        Assert.Equal(0, sim.Simulator.Flash[0x12000]);

        var bad = ps.Invoke("Clear-Esp32Flash -Port $port -Offset 0x10001 -Length 0x1000 -Confirm:$false", PowerShellSession.Vars(("port", sim.Url)));
        Assert.Equal("Esp32RegionNotAligned,IoTHubMqtt.Commands.Esp32.ClearEsp32FlashCommand", Assert.Single(bad.AllErrors).FullyQualifiedErrorId);

        var whole = ps.Invoke("Clear-Esp32Flash -Port $port -Confirm:$false -PassThru", PowerShellSession.Vars(("port", sim.Url)));
        Assert.Single(whole.Output);
        Assert.All(sim.Simulator.Flash, b => Assert.Equal(0xFF, b));
    }

    [Fact]
    public async Task ReadEsp32Flash_ToFileAndToPipeline()
    {
        await using var sim = new SimulatorServer();
        var expected = Enumerable.Range(0, 10000).Select(i => (byte)(i * 7)).ToArray();
        expected.CopyTo(sim.Simulator.Flash, 0x9000);
        var path = Path.Combine(files.Root, "dump.bin");

        var file = ps.Invoke("Read-Esp32Flash -Port $port -Offset 0x9000 -Length 10000 -Path $path", PowerShellSession.Vars(("port", sim.Url), ("path", path)));
        Assert.Empty(file.AllErrors);
        Assert.Equal(expected, File.ReadAllBytes(path));

        var bytes = ps.Invoke("Read-Esp32Flash -Port $port -Offset 0x9000 -Length 16", PowerShellSession.Vars(("port", sim.Url)));
        Assert.Equal(expected[..16], Assert.IsType<byte[]>(Assert.Single(bytes.Output).BaseObject));
    }

    [Fact]
    public async Task SerialPath_OverSocatPty_UsesUnixSerialPortImplementation()
    {
        // Fails, not skips, when socat is missing: the real System.IO.Ports path must be tested.
        await using var sim = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32C3 });
        using var pty = new PtyBridge(sim);
        files.Write("app.bin", Esp32Files.App(5, 32 * 1024, 10));

        var result = ps.Invoke($"[void]$ExecutionContext.SessionState.Path.SetLocation('{files.Root}'); Install-Esp32Firmware -Port $port -Image '0x10000=app.bin' -Baud 460800", PowerShellSession.Vars(("port", pty.DevicePath)));

        Assert.Empty(result.AllErrors);
        Assert.Equal("Written", Assert.Single(result.Output).Properties["Status"].Value.ToString());
        var ports = AppDomain.CurrentDomain.GetAssemblies().Where(a => a.GetName().Name == "System.IO.Ports").Select(a => a.Location).ToList();
        // The Unix implementation, not the reference assembly that throws PlatformNotSupportedException: the module's own
        // copy (dependencies/runtimes/unix/lib/), or the one pwsh itself ships (runtimes/unix/lib/) when it is as new.
        Assert.Contains(ports, p => p.Replace('\\', '/').Contains("runtimes/unix/lib/", StringComparison.Ordinal));
    }
}
