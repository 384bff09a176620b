using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests;

public sealed class HostTests
{
    [Fact]
    public void File_WithNamedAndQuotedArguments_RunsWithModuleImported()
    {
        var script = HostProcess.WriteScript("""
            param([string]$Name, [int]$Count = 1, [switch]$Loud)
            "name=$Name count=$Count loud=$Loud"
            (Get-Command New-IoTHubSasToken).ModuleName
            """);
        try
        {
            var result = HostProcess.Run(null, null, "-File", script, "-Name", "it's a test", "-Count", "3", "-Loud");

            Assert.Equal(0, result.ExitCode);
            Assert.Contains("name=it's a test count=3 loud=True", result.StdOut, StringComparison.Ordinal);
            Assert.Contains("IoTHubMqtt", result.StdOut, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(script);
        }
    }

    [Fact]
    public void Command_Verbose_WritesVerboseLinesAndFormattedObjects()
    {
        var result = HostProcess.Run(null, null, "-Verbose", "-Command",
            "New-IoTHubSasToken -ResourceUri h/devices/d -Key cGFzc3dvcmQ= | Out-Null; ConvertFrom-IoTHubConnectionString 'HostName=h.net;DeviceId=dev7;SharedAccessKey=c2VjcmV0a2V5c2VjcmV0a2V5'");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("VERBOSE: Signing h/devices/d", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("dev7", result.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("c2VjcmV0a2V5c2VjcmV0a2V5", result.StdOut + result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", result.StdOut, StringComparison.Ordinal); // plain text when redirected
    }

    [Fact]
    public void Throw_ExitsNonZeroWithErrorIdOnStdErr()
    {
        var result = HostProcess.Run(null, null, "-Command", "$ErrorActionPreference = 'Stop'; New-IoTHubSasToken -ResourceUri r -Key 'bad key'; 'not reached'");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("KeyNotBase64,IoTHubMqtt.Commands.Credentials.NewIoTHubSasTokenCommand", result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("not reached", result.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public void NonTerminatingError_IsShownAndScriptGoesOn()
    {
        var result = HostProcess.Run(null, null, "-Command", "ConvertFrom-IoTHubConnectionString 'HostName=h.net'; 'after'");

        Assert.Contains("after", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("SharedAccessKeyName", result.StdOut + result.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public void Exit_WithCode_IsTheProcessExitCode()
    {
        var script = HostProcess.WriteScript("'before'; exit 7");
        try
        {
            var result = HostProcess.Run(null, null, "-File", script);

            Assert.Equal(7, result.ExitCode);
            Assert.Contains("before", result.StdOut, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(script);
        }
    }

    [Fact]
    public void BadArguments_PrintUsageAndExit64()
    {
        var result = HostProcess.Run(null, null, "-Bogus");

        Assert.Equal(64, result.ExitCode);
        Assert.Contains("Usage:", result.StdErr, StringComparison.Ordinal);
    }
}
