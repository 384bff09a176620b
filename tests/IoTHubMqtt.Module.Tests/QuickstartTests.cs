using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests;

/// <summary>The README's first command: the Host (pwsh's console host on Microsoft.PowerShell.SDK) runs the quickstart.</summary>
public sealed class QuickstartTests
{
    [Fact]
    public void Quickstart_ThroughTheHost_RunsToTheEndWithoutSecrets()
    {
        var script = Path.Combine(TestPaths.RepoRoot, "module", "examples", "Quickstart.ps1");

        var result = HostProcess.Run(TimeSpan.FromMinutes(3), null, "-File", script);

        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        Assert.Equal(string.Empty, result.StdErr);
        var output = result.StdOut;
        Assert.Contains("quickstart-device", output, StringComparison.Ordinal);
        Assert.Contains("Connected", output, StringComparison.Ordinal);
        Assert.Contains("{\"sequence\":3,\"temperature\":21.5}", output, StringComparison.Ordinal);   // telemetry read back by the service, whole
        Assert.Contains("Body      : turn on the fan", output, StringComparison.Ordinal);     // C2D received by the device
        Assert.Contains("Kind      : command", output, StringComparison.Ordinal);
        Assert.Contains("The service got status 200 and payload {\"rebooting\":true,\"delaySeconds\":5}", output, StringComparison.Ordinal);
        Assert.Contains("Desired telemetryInterval is now 30 s", output, StringComparison.Ordinal);
        Assert.Contains("\"firmwareVersion\": \"1.0.0\"", output, StringComparison.Ordinal);  // the reported twin as JSON
        Assert.Contains("Done.", output, StringComparison.Ordinal);
        Assert.DoesNotContain("SharedAccessKey=", output, StringComparison.Ordinal);
        Assert.DoesNotContain("SharedAccessSignature", output, StringComparison.Ordinal);
        Assert.DoesNotContain("sig=", output, StringComparison.Ordinal);
    }
}
