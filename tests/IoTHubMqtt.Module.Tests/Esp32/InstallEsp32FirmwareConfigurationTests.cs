using System.Management.Automation;
using IoTHubMqtt.Esp32.Simulator;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Esp32;

/// <summary>
/// Install-Esp32Firmware -Configuration: what the cmdlet writes to the simulator's config partition is read back the way the
/// board reads it (partition table, littlefs, the firmware's own parser, in the firmware-device process); and the bootloader
/// header options -FlashMode/-FlashSize/-FlashFrequency as they land in flash.
/// </summary>
public sealed class InstallEsp32FirmwareConfigurationTests : IDisposable
{
    private const string Cmd = "IoTHubMqtt.Commands.Esp32.InstallEsp32FirmwareCommand";
    private const string Key = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";
    private const string WifiPassword = "tr0ub4dor&3-horse";
    private const string CaPem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n";
    private const uint DeployOffset = 0x1C0000;
    private const uint ConfigOffset = DeployOffset + 0x20000;
    private readonly PowerShellSession ps = new();
    private readonly Esp32Files files = new();

    public void Dispose()
    {
        ps.Dispose();
        files.Dispose();
    }

    private static object? Prop(PSObject o, string name) => o.Properties[name].Value;

    private static void AssertNoSecrets(PowerShellResult result)
    {
        var text = result.AllText() + string.Join("\n", result.AllErrors.Select(e => e.Exception.Message + e.ErrorDetails?.RecommendedAction + e.TargetObject));
        Assert.DoesNotContain(Key, text, StringComparison.Ordinal);
        Assert.DoesNotContain(WifiPassword, text, StringComparison.Ordinal);
        Assert.DoesNotContain("SharedAccessKey=", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Package_DeploymentAndConfiguration_FirmwareReadsBackWhatWasGiven()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32C3 });
        var package = files.Package(5, DeployOffset, configSize: 0x40000);
        var deployment = files.Write("app.bin", Esp32Files.Deployment("IoTHubDevice"));
        files.Write("ca.pem", System.Text.Encoding.UTF8.GetBytes(CaPem));

        var result = ps.Invoke($"[void]$ExecutionContext.SessionState.Path.SetLocation('{files.Root}'); " + """
            $config = @{
                WifiSsid = 'lab-network'
                WifiPassword = [Net.NetworkCredential]::new('', $wifi).SecurePassword
                ConnectionString = "HostName=my-hub.azure-devices.net;DeviceId=esp32-07;SharedAccessKey=$key"
                CaCertificate = 'ca.pem'
                TelemetryInterval = 15
                MqttPort = 18883
            }
            Install-Esp32Firmware -Port $port -Package $pkg -DeploymentImage $dep -Configuration $config -Verbose
            """, PowerShellSession.Vars(("port", sim.Url), ("pkg", package), ("dep", deployment), ("wifi", WifiPassword), ("key", Key)));

        Assert.Empty(result.AllErrors);
        Assert.Equal(["bootloader", "partition-table", "nanoCLR", "deployment", "config"], result.Output.Select(o => (string)Prop(o, "Name")!));
        var config = result.Output[^1];
        Assert.Equal(ConfigOffset, (uint)Prop(config, "Offset")!);
        Assert.True((bool)Prop(config, "Verified")!);
        AssertNoSecrets(result);

        var (read, error) = FirmwareDeviceProcess.ReadConfiguration(sim.Simulator.Flash);
        Assert.Null(error);
        var c = read!.Value;
        Assert.Equal("lab-network", c.GetProperty("wifiSsid").GetString());
        Assert.Equal(WifiPassword, c.GetProperty("wifiPassword").GetString());
        Assert.Equal("my-hub.azure-devices.net", c.GetProperty("hostName").GetString());
        Assert.Equal("esp32-07", c.GetProperty("deviceId").GetString());
        Assert.Equal(Key, c.GetProperty("sharedAccessKey").GetString());
        Assert.Equal(CaPem, c.GetProperty("caCertificate").GetString());
        Assert.Equal(15, c.GetProperty("telemetryInterval").GetInt32());
        Assert.Equal(18883, c.GetProperty("port").GetInt32());
        // The rest of the partition is erased flash, not stale data.
        Assert.All(sim.Simulator.Flash.AsSpan((int)ConfigOffset + 0x10000, 0x30000).ToArray(), b => Assert.Equal(0xFF, b));
    }

    [Fact]
    public async Task ConfigurationAlone_Dps_WifiCredential_TableReadFromBoard_SecondRunSkipped()
    {
        await using var sim = new SimulatorServer();
        Esp32Files.PartitionTable(DeployOffset, 0x20000, 0x10000).CopyTo(sim.Simulator.Flash, 0x8000);
        const string script = """
            $wifi = [pscredential]::new('open-lab', [Net.NetworkCredential]::new('', $wifiPassword).SecurePassword)
            $config = [pscustomobject]@{ WifiCredential = $wifi; IdScope = '0ne00ABCDEF'; RegistrationId = 'sn-0042'; SymmetricKey = [Net.NetworkCredential]::new('', $key).SecurePassword; DeviceName = 'ignored' }
            Install-Esp32Firmware $port -Configuration $config
            """;
        var vars = PowerShellSession.Vars(("port", sim.Url), ("wifiPassword", WifiPassword), ("key", Key));

        var result = ps.Invoke(script, vars);

        Assert.Empty(result.AllErrors);
        var region = Assert.Single(result.Output);
        Assert.Equal(("config", ConfigOffset, "Written"), ((string)Prop(region, "Name")!, (uint)Prop(region, "Offset")!, Prop(region, "Status")!.ToString()));
        AssertNoSecrets(result);
        var c = FirmwareDeviceProcess.ReadConfiguration(sim.Simulator.Flash).Configuration!.Value;
        Assert.Equal(("open-lab", WifiPassword), (c.GetProperty("wifiSsid").GetString(), c.GetProperty("wifiPassword").GetString()));
        Assert.Equal(("0ne00ABCDEF", "sn-0042", Key), (c.GetProperty("idScope").GetString(), c.GetProperty("registrationId").GetString(), c.GetProperty("symmetricKey").GetString()));
        Assert.Equal("global.azure-devices-provisioning.net", c.GetProperty("globalEndpoint").GetString());
        Assert.Equal(8883, c.GetProperty("port").GetInt32());

        var again = ps.Invoke(script, vars);
        Assert.Equal("Skipped", Prop(Assert.Single(again.Output), "Status")!.ToString());
    }

    [Fact]
    public async Task ImagesWithConfiguration_WhatIfWritesNothing_ThenBothAreWritten()
    {
        await using var sim = new SimulatorServer();
        Esp32Files.PartitionTable(DeployOffset, 0x20000, 0x10000).CopyTo(sim.Simulator.Flash, 0x8000);
        var app = files.Write("app.bin", Esp32Files.App(0, 16 * 1024, 8));
        const string script = "Install-Esp32Firmware -Port $port -Image \"0x10000=$app\" -Configuration @{ Ssid = 'lab'; ConnectionString = $cs }";
        var vars = PowerShellSession.Vars(("port", sim.Url), ("app", app), ("cs", $"HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKey={Key}"));

        var whatIf = ps.Invoke(script + " -WhatIf", vars);

        Assert.Empty(whatIf.AllErrors);
        Assert.Empty(whatIf.Output);
        Assert.Equal(0, sim.Simulator.CountOf(0x02));
        AssertNoSecrets(whatIf);

        var result = ps.Invoke(script, vars);

        Assert.Empty(result.AllErrors);
        Assert.Equal([("app.bin", 0x10000u), ("config", ConfigOffset)], result.Output.Select(o => ((string)Prop(o, "Name")!, (uint)Prop(o, "Offset")!)));
        var c = FirmwareDeviceProcess.ReadConfiguration(sim.Simulator.Flash).Configuration!.Value;
        Assert.Equal(("lab", "d1", string.Empty), (c.GetProperty("wifiSsid").GetString(), c.GetProperty("deviceId").GetString(), c.GetProperty("wifiPassword").GetString()));
    }

    [Theory]
    [InlineData("@{ WifiSsid = 'lab'; WifiPasswrd = 'x'; ConnectionString = $cs }", "Esp32ConfigurationUnknownKey")]
    [InlineData("@{ WifiSsid = 'lab' }", "DeviceConfigurationNoCredential")]
    [InlineData("@{ ConnectionString = $cs }", "DeviceConfigurationInvalidSsid")]
    [InlineData("@{ WifiSsid = 'lab'; WifiPassword = 'short'; ConnectionString = $cs }", "DeviceConfigurationInvalidWifiPassword")]
    [InlineData("@{ WifiSsid = 'lab'; ConnectionString = $cs; IdScope = '0ne0'; RegistrationId = 'a'; SymmetricKey = $key }", "DeviceConfigurationBothCredentials")]
    [InlineData("@{ WifiSsid = 'lab'; ConnectionString = $cs.Replace('DeviceId=esp32-07', 'SharedAccessKeyName=iothubowner') }", "DeviceConfigurationNotDeviceConnectionString")]
    [InlineData("@{ WifiSsid = 'lab'; ConnectionString = $cs; CaCertificate = 'no-such.pem' }", "Esp32ConfigurationCaNotFound")]
    [InlineData("@{ WifiSsid = 'lab'; ConnectionString = $cs; TelemetryInterval = 'often' }", "Esp32ConfigurationInvalid")]
    [InlineData("@{ WifiSsid = 'lab'; ConnectionString = $cs; TelemetryInterval = 0 }", "DeviceConfigurationInvalidTelemetryInterval")]
    [InlineData("'WifiSsid=lab'", "Esp32ConfigurationInvalid")]
    public async Task BadConfiguration_ErrorIdBeforeThePortIsOpened_NoSecretsShown(string configuration, string errorId)
    {
        await using var sim = new SimulatorServer();

        var result = ps.Invoke($"Install-Esp32Firmware -Port $port -Configuration ({configuration})",
            PowerShellSession.Vars(("port", sim.Url), ("cs", $"HostName=my-hub.azure-devices.net;DeviceId=esp32-07;SharedAccessKey={Key}"), ("key", Key)));

        var error = Assert.Single(result.AllErrors);
        Assert.Equal($"{errorId},{Cmd}", error.FullyQualifiedErrorId);
        Assert.Equal(0, sim.Simulator.CountOf(0x08)); // no SYNC: checked before connecting
        AssertNoSecrets(result);
    }

    [Fact]
    public async Task BoardWithoutConfigPartition_PartitionNotFound_NothingWritten()
    {
        await using var sim = new SimulatorServer();
        Esp32Files.PartitionTable(DeployOffset, 0x20000).CopyTo(sim.Simulator.Flash, 0x8000);

        var result = ps.Invoke("Install-Esp32Firmware -Port $port -Configuration @{ WifiSsid = 'lab'; IdScope = '0ne0'; RegistrationId = 'a'; SymmetricKey = $key }",
            PowerShellSession.Vars(("port", sim.Url), ("key", Key)));

        var error = Assert.Single(result.AllErrors);
        Assert.Equal($"PartitionNotFound,{Cmd}", error.FullyQualifiedErrorId);
        Assert.Contains("config", error.ErrorDetails.RecommendedAction, StringComparison.Ordinal);
        Assert.Equal(0, sim.Simulator.CountOf(0x02));
    }

    [Theory]
    [InlineData(SimulatedChipType.Esp32, 0, 0x1000, "-FlashMode Dout -FlashSize 16MB -FlashFreq 80m", 3, 0x4F)]
    [InlineData(SimulatedChipType.Esp32C3, 5, 0x0, "-FlashSize 8MB -FlashFrequency 40m", 2, 0x30)]
    [InlineData(SimulatedChipType.Esp32H2, 16, 0x0, "-FlashMode Qio -FlashFrequency 48m", 0, 0x2F)]
    [InlineData(SimulatedChipType.Esp32S3, 9, 0x0, "", 2, 0x20)]
    public async Task Package_BootloaderHeader_PatchedAsAsked(SimulatedChipType type, int chipId, int bootloaderOffset, string options, byte mode, byte sizeAndFrequency)
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { Chip = type });
        var package = files.Package(chipId, DeployOffset);

        var result = ps.Invoke($"Install-Esp32Firmware -Port $port -Package $pkg {options}", PowerShellSession.Vars(("port", sim.Url), ("pkg", package)));

        Assert.Empty(result.AllErrors);
        Assert.Equal((byte)0xE9, sim.Simulator.Flash[bootloaderOffset]);
        Assert.Equal(mode, sim.Simulator.Flash[bootloaderOffset + 2]);
        Assert.Equal(sizeAndFrequency, sim.Simulator.Flash[bootloaderOffset + 3]);
        var original = File.ReadAllBytes(Path.Combine(package, "bootloader.bin"));
        Assert.Equal(original[4..], sim.Simulator.Flash.AsSpan(bootloaderOffset + 4, original.Length - 4).ToArray());
    }

    [Fact]
    public async Task FlashFrequency_TheChipDoesNotHave_ErrorNamesTheChoices()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32H2 });
        var package = files.Package(16, DeployOffset);

        var result = ps.Invoke("Install-Esp32Firmware -Port $port -Package $pkg -FlashFrequency 80m", PowerShellSession.Vars(("port", sim.Url), ("pkg", package)));

        var error = Assert.Single(result.AllErrors);
        Assert.Equal($"Esp32FlashFrequencyNotSupported,{Cmd}", error.FullyQualifiedErrorId);
        Assert.Contains("48m, 24m, 16m, 12m", error.Exception.Message, StringComparison.Ordinal);
        Assert.Equal(0, sim.Simulator.CountOf(0x02));
    }
}
