using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests;

/// <summary>The README's first command: the Host runs the quickstart.</summary>
public sealed class QuickstartTests
{
    [Fact]
    public void Quickstart_ThroughTheHost_RunsToTheEndWithoutSecrets()
    {
        var script = Path.Combine(TestPaths.RepoRoot, "module", "examples", "Quickstart.ps1");

        var result = HostProcess.Run(TimeSpan.FromMinutes(3), null, "-File", script);

        Assert.True(result.ExitCode == 0, result.StdErr);
        Assert.Equal(string.Empty, result.StdErr);
        Assert.Contains("quickstart-device", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("sensor-003", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("Done.", result.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("cXVpY2tzdGFydC1kZXZpY2Uta2V5", result.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("SharedAccessSignature", result.StdOut, StringComparison.Ordinal);
    }
}
