using System.Management.Automation;
using IoTHubMqtt.Esp32.Simulator;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Esp32;

/// <summary>
/// module/examples/Flash-Fleet.ps1 end to end: the fleet example provisions devices (its emulator keeps its state in a data
/// folder), a hub with that state runs, the script flashes one simulated board per device over RFC 2217 (the boards run
/// their old app until reset into the loader, and are reset into the new one afterwards), and each board that boots is
/// played by the firmware's logic on .NET (firmware-device process) reading its flash; the script sees the devices connect.
/// </summary>
public sealed class FlashFleetExampleTests : IDisposable
{
    private static readonly string FlashFleet = Path.Combine(TestPaths.RepoRoot, "module", "examples", "Flash-Fleet.ps1");
    private static readonly string ProvisionFleet = Path.Combine(TestPaths.RepoRoot, "module", "examples", "Provision-Fleet.ps1");
    private readonly string folder = Directory.CreateTempSubdirectory("flash-fleet-").FullName;
    private readonly PowerShellSession ps = new();
    private readonly Esp32Files files = new();

    public void Dispose()
    {
        ps.Invoke("if ($hub) { $hub | Stop-IoTHubEmulator -Confirm:$false }");
        ps.Dispose();
        files.Dispose();
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // the emulator's database may still be closing
        }
    }

    [Fact]
    public async Task FlashFleet_EachBoardGetsItsOwnConfiguration_AndItsDeviceConnects()
    {
        var data = Path.Combine(folder, "hub");
        var configs = Path.Combine(folder, "configs");
        File.WriteAllText(Path.Combine(folder, "fleet.csv"), "SerialNumber\nSN-0002\nSN-0001\n");
        var provision = ps.Invoke($"$PSDefaultParameterValues['Start-IoTHubEmulator:DataPath'] = '{data}'; & '{ProvisionFleet}' -CsvPath '{Path.Combine(folder, "fleet.csv")}' -OutputPath '{configs}' -SkipCheck",
            timeout: TimeSpan.FromSeconds(90));
        Assert.Null(provision.TerminatingError);
        var started = ps.Invoke($"$PSDefaultParameterValues.Clear(); $hub = Start-IoTHubEmulator -DataPath '{data}'; $service = $hub | Connect-IoTHubService");
        Assert.Empty(started.AllErrors);

        var package = files.Package(5, 0x1C0000, configSize: 0x10000);
        var deployment = files.Write("IoTHubDevice.bin", Esp32Files.Deployment("IoTHubDevice"));
        var options = new SimulatorOptions { Chip = SimulatedChipType.Esp32C3, StartInBootloader = false };
        await using var board1 = new SimulatorServer(new Esp32Simulator(options), rfc2217: true);
        await using var board2 = new SimulatorServer(new Esp32Simulator(new SimulatorOptions { Chip = SimulatedChipType.Esp32C3, StartInBootloader = false }), rfc2217: true);
        var devices = new List<FirmwareDeviceProcess>();
        try
        {
            var script = Task.Run(() => ps.Invoke($$"""
                $wifi = [pscredential]::new('lab-network', [Net.NetworkCredential]::new('', 'wifi-secret-123').SecurePassword)
                & '{{FlashFleet}}' -ConfigPath '{{configs}}' -Port $ports -Package $pkg -DeploymentImage $dep -WifiCredential $wifi `
                    -CaCertificate $hub.CaCertificatePath -MqttPort $hub.MqttTlsPort -TelemetryInterval 5 -Connection $service -TimeoutSeconds 90 -Baud 460800
                """, PowerShellSession.Vars(("ports", new[] { board1.Url, board2.Url }), ("pkg", package), ("dep", deployment)), TimeSpan.FromMinutes(3)), TestContext.Current.CancellationToken);

            // A board boots the new app when the flasher resets it after writing: then the app reads its flash.
            foreach (var board in new[] { board1, board2 })
            {
                var deadline = DateTime.UtcNow.AddSeconds(90);
                while (!(board.Simulator.Mode == SimulatedBootMode.Application && board.Simulator.CountOf(0x10) > 0) && !script.IsCompleted)
                {
                    Assert.True(DateTime.UtcNow < deadline, "The board was not flashed and reset.");
                    await Task.Delay(100, TestContext.Current.CancellationToken);
                }

                devices.Add(FirmwareDeviceProcess.Run(board.Simulator.Flash.ToArray(), seconds: 150));
            }

            var result = await script;

            Assert.Null(result.TerminatingError);
            Assert.Empty(result.Errors);
            var rows = result.Output.Where(o => o.Properties["Connected"] is not null).ToList();
            Assert.Equal(["SN-0001", "SN-0002"], rows.Select(r => (string)r.Properties["DeviceId"].Value));
            Assert.Equal([board1.Url, board2.Url], rows.Select(r => (string)r.Properties["Port"].Value));
            Assert.All(rows, r => Assert.True((bool)r.Properties["Connected"].Value, "not connected: " + r.Properties["DeviceId"].Value + string.Join("\n", devices.Select(d => d.Errors))));
            Assert.All(rows, r => Assert.Equal(5, (int)r.Properties["Written"].Value));
            Assert.Equal(["SN-0001", "SN-0002"], devices.Select(d => d.WaitConnected(TimeSpan.FromSeconds(5))));
            Assert.DoesNotContain("SharedAccessKey", result.AllText(), StringComparison.Ordinal);
            Assert.DoesNotContain("wifi-secret-123", result.AllText(), StringComparison.Ordinal);

            // Each board holds its own device's configuration.
            var first = FirmwareDeviceProcess.ReadConfiguration(board1.Simulator.Flash).Configuration!.Value;
            var second = FirmwareDeviceProcess.ReadConfiguration(board2.Simulator.Flash).Configuration!.Value;
            Assert.Equal(("SN-0001", "SN-0002"), (first.GetProperty("deviceId").GetString(), second.GetProperty("deviceId").GetString()));
            Assert.Equal("lab-network", first.GetProperty("wifiSsid").GetString());
            Assert.Equal(5, second.GetProperty("telemetryInterval").GetInt32());
        }
        finally
        {
            foreach (var device in devices)
            {
                device.Dispose();
            }
        }
    }

    [Fact]
    public void FlashFleet_FewerPortsThanDevices_StopsBeforeFlashing()
    {
        var configs = Directory.CreateDirectory(Path.Combine(folder, "configs")).FullName;
        foreach (var id in new[] { "a-1", "a-2" })
        {
            File.WriteAllText(Path.Combine(configs, id + ".json"), $$"""{ "deviceId": "{{id}}", "hostName": "localhost", "connectionString": "HostName=localhost;DeviceId={{id}};SharedAccessKey=q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=" }""");
        }

        var result = ps.Invoke($$"""
            $wifi = [pscredential]::new('lab', [Net.NetworkCredential]::new('', 'wifi-secret-123').SecurePassword)
            & '{{FlashFleet}}' -ConfigPath '{{configs}}' -Port socket://127.0.0.1:9 -Package '{{folder}}' -WifiCredential $wifi
            """);

        Assert.NotNull(result.TerminatingError);
        Assert.Contains("2 device(s) but 1 port(s)", result.TerminatingError!.Message, StringComparison.Ordinal);
    }
}
