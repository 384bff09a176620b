using System.Management.Automation;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Telemetry;

/// <summary>
/// Stopping Receive-IoTHubTelemetry (Ctrl+C, or a downstream command that has all it wants) closes what it opened: its
/// AMQP connections to the Event Hub-compatible endpoint are closed by the time the command has ended, and the
/// checkpoint of what was delivered is written.
/// </summary>
public sealed class TelemetryStopTests : IDisposable
{
    private readonly PowerShellSession ps = new();
    private readonly string folder = Directory.CreateTempSubdirectory("iothubmqtt-stop-").FullName;

    public void Dispose()
    {
        ps.Invoke("if ($hub) { $hub | Stop-IoTHubEmulator -Confirm:$false }");
        ps.Dispose();
        Directory.Delete(folder, recursive: true);
    }

    /// <summary>An emulator with one device that sent <paramref name="messages"/> messages 'm{n}'.</summary>
    private void StartAndSend(int messages)
    {
        var result = ps.Invoke("""
            $hub = Start-IoTHubEmulator -ServiceRequestsPerSecond 0
            $hub | Connect-IoTHubService | Out-Null
            $d = New-IoTHubDevice -DeviceId stop-1
            $c = Connect-IoTHub -ConnectionString $d.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
            foreach ($n in 1..$messages) { Send-IoTHubMessage -Connection $c -Body "m$n" | Out-Null }
            Disconnect-IoTHub -Connection $c
            """, PowerShellSession.Vars(("messages", messages)), TimeSpan.FromMinutes(2));
        Assert.Empty(result.AllErrors);
    }

    /// <summary>The AMQP connections the emulator has open now (the emulator object lives in the module's load context: no cast).</summary>
    private int AmqpConnections()
    {
        var hub = ps.GetVariable("hub") is PSObject wrapped ? wrapped.BaseObject : ps.GetVariable("hub")!;
        return (int)hub.GetType().GetProperty("AmqpConnectionCount")!.GetValue(hub)!;
    }

    /// <summary>
    /// The emulator closes its side of a connection when the client's close (or its end of the socket) arrives, a moment
    /// after the client closed: waited for, with a guard against a hang only. An open connection fails the test.
    /// </summary>
    private void AssertAmqpConnectionsClose(string when)
    {
        var guard = DateTime.UtcNow.AddMinutes(1);
        while (AmqpConnections() > 0 && DateTime.UtcNow < guard)
        {
            Thread.Sleep(50);
        }

        Assert.True(AmqpConnections() == 0, $"{when}: {AmqpConnections()} AMQP connection(s) still open a minute after the read ended.");
    }

    [Theory]
    [InlineData("-Count 10 -Timeout 600")]
    [InlineData("-Timeout 0")]
    [InlineData("-Timeout 0 -Checkpoint '{checkpoint}'")]
    public void CtrlC_WhileReading_ClosesTheConnection_AndTheNextReadResumes(string arguments)
    {
        StartAndSend(3);
        var checkpoint = Path.Combine(folder, "stop.json");
        var (result, stopped) = ps.InvokeAndStopAfterOutput($"Receive-IoTHubTelemetry {arguments.Replace("{checkpoint}", checkpoint, StringComparison.Ordinal)}", outputsBeforeStop: 3);

        Assert.True(stopped, "Ctrl+C stopped the read");
        Assert.Equal(["m1", "m2", "m3"], result.Output.Select(o => o.Properties["Body"].Value.ToString()));
        Assert.All(result.AllErrors, e => Assert.StartsWith("PipelineStopped", e.FullyQualifiedErrorId, StringComparison.Ordinal));
        AssertAmqpConnectionsClose("after Ctrl+C");

        // The next read works; with the checkpoint it starts after what the stopped one delivered.
        var resumes = arguments.Contains("Checkpoint", StringComparison.Ordinal);
        var next = ps.Invoke($$"""
            $c = Connect-IoTHub -ConnectionString $d.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
            Send-IoTHubMessage -Connection $c -Body m4 | Out-Null
            Disconnect-IoTHub -Connection $c
            (Receive-IoTHubTelemetry {{(resumes ? $"-Checkpoint '{checkpoint}'" : "")}} -Count 1 -Timeout 120).Body
            """, timeout: TimeSpan.FromMinutes(3));
        Assert.Empty(next.AllErrors);
        Assert.Equal([resumes ? "m4" : "m1"], next.Output.Select(o => o.ToString()));
        AssertAmqpConnectionsClose("after the next read");
    }

    [Fact]
    public void DownstreamThatHasEnough_EndsTheRead_AndClosesTheConnection()
    {
        StartAndSend(5);
        var result = ps.Invoke("Receive-IoTHubTelemetry -Timeout 600 | Select-Object -First 2 | ForEach-Object { $_.Body }", timeout: TimeSpan.FromMinutes(2));

        Assert.Empty(result.AllErrors);
        Assert.Equal(["m1", "m2"], result.Output.Select(o => o.ToString()));
        AssertAmqpConnectionsClose("after Select-Object -First 2");
    }
}
