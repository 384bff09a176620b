using System.Net.Sockets;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Emulator;

public sealed class StartStopIoTHubEmulatorTests : IDisposable
{
    private readonly PowerShellSession ps = new();

    public void Dispose()
    {
        ps.Invoke("while ($true) { try { Stop-IoTHubEmulator -ErrorAction Stop -Confirm:$false } catch { break } }");
        ps.Dispose();
    }

    [Fact]
    public void Start_ReturnsRunningEmulatorOnLoopbackPorts_AndStopWithNoArgumentStopsIt()
    {
        var started = ps.Invoke("$e = Start-IoTHubEmulator; $e");

        Assert.Empty(started.AllErrors);
        var emulator = Assert.Single(started.Output);
        Assert.Equal("localhost", emulator.Properties["HostName"].Value);
        var tlsPort = (int)emulator.Properties["MqttTlsPort"].Value;
        foreach (var port in new[] { "MqttTlsPort", "HttpsPort", "WebSocketPort", "DpsPort", "AmqpPort" })
        {
            Assert.InRange((int)emulator.Properties[port].Value, 1, 65535);
        }

        Assert.True(File.Exists((string)emulator.Properties["CaCertificatePath"].Value));
        Assert.StartsWith("-----BEGIN CERTIFICATE-----", File.ReadAllText((string)emulator.Properties["CaCertificatePath"].Value), StringComparison.Ordinal);
        Assert.True(CanConnect(tlsPort));

        var stopped = ps.Invoke("Stop-IoTHubEmulator -Confirm:$false; $e.IsRunning");
        Assert.Empty(stopped.AllErrors);
        Assert.False((bool)Assert.Single(stopped.Output).BaseObject);
        Assert.False(CanConnect(tlsPort));
    }

    [Fact]
    public void Emulator_DefaultViewsAndToString_NeverShowTheOwnerConnectionString()
    {
        var result = ps.Invoke("$e = Start-IoTHubEmulator; $e.OwnerConnectionString; $e.ToString()");
        Assert.Empty(result.AllErrors);
        var connectionString = (string)result.Output[0].BaseObject;
        Assert.StartsWith("HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=", connectionString, StringComparison.Ordinal);
        var key = connectionString.Split("SharedAccessKey=")[1];
        Assert.DoesNotContain(key, (string)result.Output[1].BaseObject, StringComparison.Ordinal);

        var table = ps.Render("$e");
        Assert.Contains("MqttTlsPort", table, StringComparison.Ordinal);
        Assert.DoesNotContain(key, table, StringComparison.Ordinal);
        var list = ps.Render("$e | Format-List");
        Assert.Contains("MqttTlsPort", list, StringComparison.Ordinal);
        Assert.Contains("CaCertificatePath", list, StringComparison.Ordinal);
        Assert.DoesNotContain("OwnerConnectionString", list, StringComparison.Ordinal);
        Assert.DoesNotContain(key, list, StringComparison.Ordinal);
    }

    [Fact]
    public void CreatedDevice_DefaultViews_ShowIdButNoKeyOrConnectionString()
    {
        var result = ps.Invoke("$e = Start-IoTHubEmulator; $d = $e.CreateDevice('viewed-device'); $d.PrimaryKey");
        Assert.Empty(result.AllErrors);
        var key = (string)Assert.Single(result.Output).BaseObject;
        var table = ps.Render("$d");
        Assert.Contains("viewed-device", table, StringComparison.Ordinal);
        foreach (var text in new[] { table, ps.Render("$d.ToString()") })
        {
            Assert.DoesNotContain(key, text, StringComparison.Ordinal);
            Assert.DoesNotContain("SharedAccessKey", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Start_WithVerbose_ReportsTheEndpoints()
    {
        var result = ps.Invoke("$e = Start-IoTHubEmulator -Verbose");
        Assert.Empty(result.AllErrors);
        Assert.Contains(result.Verbose, v => v.Message.Contains("listening on 127.0.0.1", StringComparison.Ordinal));
        Assert.DoesNotContain(result.Verbose, v => v.Message.Contains("SharedAccessKey", StringComparison.Ordinal));
    }

    [Fact]
    public void Stop_WithWhatIf_LeavesTheEmulatorRunning()
    {
        var result = ps.Invoke("$e = Start-IoTHubEmulator; Stop-IoTHubEmulator -WhatIf; $e.IsRunning");
        Assert.Empty(result.AllErrors);
        Assert.True((bool)Assert.Single(result.Output).BaseObject);
    }

    [Fact]
    public void Stop_WhenNothingRuns_IsEmulatorNotRunningError()
    {
        var result = ps.Invoke("Stop-IoTHubEmulator -Confirm:$false");
        var error = Assert.Single(result.Errors);
        Assert.Equal("EmulatorNotRunning,IoTHubMqtt.Commands.Emulator.StopIoTHubEmulatorCommand", error.FullyQualifiedErrorId);
    }

    [Fact]
    public void Stop_ByPipeline_StopsThatEmulatorOnly()
    {
        var result = ps.Invoke("$a = Start-IoTHubEmulator; $b = Start-IoTHubEmulator; $a | Stop-IoTHubEmulator -Confirm:$false; $a.IsRunning; $b.IsRunning");
        Assert.Empty(result.AllErrors);
        Assert.Equal([false, true], result.Output.Select(o => (bool)o.BaseObject));
    }

    [Fact]
    public void Start_OnAPortInUse_IsTerminatingEmulatorPortInUse()
    {
        using var blocker = new TcpListener(System.Net.IPAddress.Loopback, 0);
        blocker.Start();
        var port = ((System.Net.IPEndPoint)blocker.LocalEndpoint).Port;
        var result = ps.Invoke($"Start-IoTHubEmulator -MqttTlsPort {port}");
        var error = Assert.Single(result.AllErrors);
        Assert.Equal("EmulatorPortInUse,IoTHubMqtt.Commands.Emulator.StartIoTHubEmulatorCommand", error.FullyQualifiedErrorId);
    }

    [Fact]
    public void Start_WithDataPath_KeepsDevicesAndOwnerKeyAcrossRestart()
    {
        var dataPath = Path.Combine(Path.GetTempPath(), "iothubmqtt-module-test-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var first = ps.Invoke("$e = Start-IoTHubEmulator -DataPath $path; $null = $e.CreateDevice('kept-device'); $e.OwnerConnectionString; $e | Stop-IoTHubEmulator -Confirm:$false",
                PowerShellSession.Vars(("path", dataPath)));
            Assert.Empty(first.AllErrors);
            var owner = (string)Assert.Single(first.Output).BaseObject;

            var second = ps.Invoke("$e = Start-IoTHubEmulator -DataPath $path; $e.GetDevice('kept-device').DeviceId; $e.OwnerConnectionString; $e.Persistent",
                PowerShellSession.Vars(("path", dataPath)));
            Assert.Empty(second.AllErrors);
            Assert.Equal("kept-device", second.Output[0].BaseObject);
            Assert.Equal(owner, second.Output[1].BaseObject);
            Assert.True((bool)second.Output[2].BaseObject);
        }
        finally
        {
            ps.Invoke("Stop-IoTHubEmulator -Confirm:$false");
            try
            {
                Directory.Delete(dataPath, true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static bool CanConnect(int port)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect(System.Net.IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
