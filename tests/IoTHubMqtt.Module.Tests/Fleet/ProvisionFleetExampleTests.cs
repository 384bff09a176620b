using System.Management.Automation;
using System.Text.Json;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Fleet;

/// <summary>module/examples/Provision-Fleet.ps1 against the emulator, in the hosted engine and through the Host.</summary>
public sealed class ProvisionFleetExampleTests(SharedStorage storage) : IDisposable
{
    private const string Csv = "SerialNumber,Status\nSN-0001,enabled\nSN-0002,\nSN-0003,disabled,extra\n,enabled\nbad id,\nSN-0004,disabled\n";
    private readonly string folder = Directory.CreateTempSubdirectory("provision-fleet-").FullName;
    private readonly string script = Path.Combine(TestPaths.RepoRoot, "module", "examples", "Provision-Fleet.ps1");

    public void Dispose() => Directory.Delete(folder, recursive: true);

    [Theory]
    [InlineData("", "SN-0001", "SN-0002", "SN-0004")]
    [InlineData("-Dps", "sn-0001", "sn-0002", "sn-0004")]
    [InlineData("-Import", "SN-0001", "SN-0002", "SN-0004")]
    public void ProvisionFleet_FromCsvWithMalformedRows_ConfiguresAndChecksEveryGoodDevice(string how, string first, string second, string third)
    {
        var dps = how == "-Dps";
        if (how == "-Import")
        {
            Assert.SkipWhen(storage.Azurite.Missing is not null, storage.Azurite.Missing ?? "");
            how += " -StorageConnectionString $env:" + SharedStorage.Variable;
        }

        var csv = Path.Combine(folder, "fleet.csv");
        File.WriteAllText(csv, Csv);
        var output = Path.Combine(folder, "configs");
        using var ps = new PowerShellSession();

        var result = ps.Invoke($"& '{script}' -CsvPath '{csv}' -OutputPath '{output}' {how}", timeout: TimeSpan.FromSeconds(90));

        Assert.Null(result.TerminatingError);
        var devices = result.Output.Where(o => o.Properties["Answered"] is not null).ToList();
        Assert.Equal([first, second, third], devices.Select(d => (string)d.Properties["DeviceId"].Value));
        // SN-0004 is disabled in the registry, so it cannot connect; DPS creates its devices enabled.
        Assert.Equal([true, true, dps], devices.Select(d => (bool)d.Properties["Answered"].Value));
        Assert.Equal(new object[] { 200, 200, dps ? 200 : "IoTHubUnauthorized" }, devices.Select(d => d.Properties["Status"].Value is PSObject p ? p.BaseObject : d.Properties["Status"].Value));
        Assert.Equal(["CsvRowMalformed", "CsvRowMalformed", dps ? "InvalidRegistrationId" : "InvalidDeviceId"], result.Errors.Select(e => e.FullyQualifiedErrorId.Split(',')[0]));
        Assert.Equal(["line 4", "line 5"], result.Errors.Take(2).Select(e => e.TargetObject));
        foreach (var id in new[] { first, second, third })
        {
            using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, id + ".json")));
            Assert.Equal(id, config.RootElement.GetProperty("deviceId").GetString());
            Assert.Equal("localhost", config.RootElement.GetProperty("hostName").GetString());
            Assert.StartsWith($"HostName=localhost;DeviceId={id};SharedAccessKey=", config.RootElement.GetProperty("connectionString").GetString(), StringComparison.Ordinal);
        }

        Assert.DoesNotContain("SharedAccessKey", result.AllText(), StringComparison.Ordinal);
    }

    [Fact]
    public void ProvisionFleet_ThroughTheHost_AgainstAnEmulatedS1Hub_PrintsNoSecrets()
    {
        var csv = Path.Combine(folder, "fleet.csv");
        File.WriteAllText(csv, "DeviceId\nhost-1\nhost-2\n");

        var result = HostProcess.Run(TimeSpan.FromMinutes(2), null, "-File", script, "-CsvPath", csv, "-OutputPath", Path.Combine(folder, "out"), "-Tier", "S1");

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.Contains("host-2", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("True", result.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("SharedAccessKey", result.StdOut + result.StdErr, StringComparison.Ordinal);
        Assert.Equal(2, Directory.GetFiles(Path.Combine(folder, "out"), "*.json").Length);
    }
}
