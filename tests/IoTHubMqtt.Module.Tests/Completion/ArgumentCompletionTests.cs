using System.Diagnostics;
using IoTHubMqtt.Esp32.Simulator;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Completion;

/// <summary>
/// Tab completion as a user gets it: the engine's own CommandCompletion (what TabExpansion2 and PSReadLine call) on a
/// typed command line, with the module imported from the build output.
/// </summary>
public sealed class ArgumentCompletionTests : IDisposable
{
    private readonly PowerShellSession ps = new();

    public void Dispose()
    {
        ps.Invoke("if ($hub) { $hub | Stop-IoTHubEmulator -Confirm:$false }");
        ps.Dispose();
    }

    /// <summary>The completion texts offered at the end of <paramref name="line"/>.</summary>
    private List<string> Complete(string line, string? setup = null, IDictionary<string, object?>? variables = null)
    {
        var result = ps.Invoke((setup ?? string.Empty) + "\n[System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null).CompletionMatches",
            new Dictionary<string, object?>(variables ?? new Dictionary<string, object?>()) { ["line"] = line }, TimeSpan.FromSeconds(60));
        Assert.Empty(result.AllErrors);
        return result.Output.Select(o => (string)o.Properties["CompletionText"].Value).ToList();
    }

    [Fact]
    public void Chip_IsAnEnum_CompletedByTheEngineByPrefix()
    {
        Assert.Equal(["Esp32", "Esp32C3", "Esp32C6", "Esp32H2", "Esp32S2", "Esp32S3"], Complete("Install-Esp32Firmware -Chip E").Order(StringComparer.Ordinal));
        Assert.Equal(["Esp32C3", "Esp32C6"], Complete("Clear-Esp32Flash -Port socket://localhost:1 -Chip esp32c"));
        Assert.Equal(["Auto"], Complete("Read-Esp32Flash -Chip a"));
    }

    [Fact]
    public void Transport_ValidateSet_IsCompletedByTheEngine()
    {
        Assert.Equal(["Mqtt", "MqttNoTls"], Complete("Connect-IoTHub -Transport M"));
        Assert.Equal(["WebSocket"], Complete("Send-IoTHubMessage -Transport w"));
    }

    [Fact]
    public void Port_OffersTheNetworkForms_AndNeverFails()
    {
        Assert.Contains("socket://", Complete("Install-Esp32Firmware -Port "));
        Assert.Equal(["rfc2217://"], Complete("Get-Esp32Device -Port r"));
        Assert.Equal(["socket://"], Complete("Read-Esp32Flash -Port 'sock"));
        Assert.Empty(Complete("Clear-Esp32Flash -Port /no/such/dir/tty"));
    }

    [Fact]
    public void Port_ListsTheSerialDevicesPresent()
    {
        var ttys = Directory.EnumerateFileSystemEntries("/dev", "tty*").ToList();
        Assert.NotEmpty(ttys);

        var offered = Complete("Get-Esp32Device -Port /dev/tt");

        Assert.NotEmpty(offered);
        Assert.All(offered, p => Assert.StartsWith("/dev/tt", p, StringComparison.Ordinal));
        Assert.Contains(ttys[0], offered);
    }

    [Fact]
    public async Task Port_ListsASocatPty_ByItsLink()
    {
        // A real pseudo-terminal (socat), as a USB serial adapter shows up: the link is offered by its prefix.
        await using var sim = new SimulatorServer();
        using var pty = new PtyBridge(sim);
        var typed = pty.DevicePath[..(pty.DevicePath.Length - 8)];

        var offered = Complete($"Install-Esp32Firmware -Image app.bin -Port {typed}");

        Assert.Equal([pty.DevicePath], offered);
        var tip = ps.Invoke("[System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null).CompletionMatches[0].ToolTip",
            PowerShellSession.Vars(("line", $"Clear-Esp32Flash -Port {typed}"))).Output.Single().ToString();
        Assert.Contains("/dev/pts/", tip, StringComparison.Ordinal);
    }

    [Fact]
    public void DeviceId_ListsTheHubsDevicesByPrefix_FromTheSessionConnection()
    {
        const string setup = """
            $hub = Start-IoTHubEmulator
            $null = $hub | Connect-IoTHubService
            $null = 'pump-01', 'pump-02', 'Pump-03', 'valve-01', 'pump(4)' | ForEach-Object { [pscustomobject]@{ DeviceId = $_ } } | New-IoTHubDevice
            """;

        Assert.Equal(["'pump(4)'", "pump-01", "pump-02", "Pump-03"], Complete("Get-IoTHubDevice -DeviceId pump", setup));
        Assert.Equal(["valve-01"], Complete("Remove-IoTHubDevice -DeviceId v"));
        Assert.Equal(["pump-01", "pump-02", "Pump-03"], Complete("Invoke-IoTHubMethod -MethodName reboot -DeviceId pump-0"));
        Assert.Equal(5, Complete("Set-IoTHubDesiredProperty -DeviceId ").Count);
        Assert.Equal(["valve-01"], Complete("Send-IoTHubCloudMessage -DeviceId val"));
        Assert.Equal(["valve-01"], Complete("Connect-IoTHub -DeviceId val"));
    }

    [Fact]
    public void DeviceId_UsesTheConnectionStringOnTheCommandLine()
    {
        // A session with no Connect-IoTHubService: the hub is the one of -ConnectionString/-Port/-CaCertificatePath.
        var hub = ps.Invoke("$hub = Start-IoTHubEmulator; $null = New-IoTHubDevice -DeviceId sensor-7 -ConnectionString $hub.OwnerConnectionString -Port $hub.HttpsPort -CaCertificatePath $hub.CaCertificatePath; $hub.OwnerConnectionString; $hub.HttpsPort; $hub.CaCertificatePath");
        Assert.Empty(hub.AllErrors);
        var (cs, port, ca) = (hub.Output[0].ToString(), hub.Output[1].ToString(), hub.Output[2].ToString());
        using var other = new PowerShellSession();

        var line = $"Get-IoTHubDevice -ConnectionString '{cs}' -Port {port} -CaCertificatePath '{ca}' -DeviceId sen";
        var offered = other.Invoke("[System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null).CompletionMatches.CompletionText", PowerShellSession.Vars(("line", line)));

        Assert.Equal(["sensor-7"], offered.Output.Select(o => o.ToString()));
    }

    [Fact]
    public void DeviceId_WithNoConnectionOrAnUnreachableHub_OffersNothingQuickly()
    {
        Assert.Empty(Complete("Remove-IoTHubDevice -DeviceId x"));

        var watch = Stopwatch.StartNew();
        var offered = Complete("Get-IoTHubDevice -ConnectionString 'HostName=127.0.0.1;SharedAccessKeyName=iothubowner;SharedAccessKey=AAAA' -Port 1 -DeviceId x");
        watch.Stop();

        Assert.Empty(offered);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"Completion took {watch.Elapsed}.");
    }
}
