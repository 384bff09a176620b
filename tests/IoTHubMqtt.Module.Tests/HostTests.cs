using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests;

/// <summary>
/// The README's first command runs scripts through iothubmqtt-host: pwsh's own console host on
/// Microsoft.PowerShell.SDK with the module imported. It must take pwsh's command line, run the whole language and
/// every built-in module, and exit as 'pwsh -File' / 'pwsh -Command' do.
/// </summary>
public sealed class HostTests
{
    private static HostProcess.Result RunFile(string text, params string[] arguments)
    {
        var script = HostProcess.WriteScript(text);
        try
        {
            return HostProcess.Run(null, null, ["-File", script, .. arguments]);
        }
        finally
        {
            File.Delete(script);
        }
    }

    [Fact]
    public void File_WithNamedAndQuotedArguments_RunsWithModuleImported()
    {
        var result = RunFile("""
            param([string]$Name, [int]$Count = 1, [switch]$Loud)
            "name=$Name count=$Count loud=$Loud"
            (Get-Command New-IoTHubSasToken).ModuleName
            """, "-Name", "it's a test", "-Count", "3", "-Loud");

        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        Assert.Contains("name=it's a test count=3 loud=True", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("IoTHubMqtt", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void File_UsesTheWholeEngine_JsonCsvSelectSleepHostAndThreadJobsOfTheSdk()
    {
        // What every PowerShell user writes; the previous host had only PowerShell's core cmdlets.
        var result = RunFile("""
            $rows = "DeviceId,Status`nsensor-1,enabled`nsensor-2,disabled" | ConvertFrom-Csv
            $rows | Select-Object -Property DeviceId | ConvertTo-Json -Compress
            $path = [IO.Path]::GetTempFileName()
            $rows | Export-Csv -Path $path
            (Import-Csv -Path $path).Count
            Remove-Item $path
            Start-Sleep -Milliseconds 1
            Write-Host 'from Write-Host'
            $splat = @{ ResourceUri = 'h/devices/d'; Key = 'cGFzc3dvcmQ=' }
            (New-IoTHubSasToken @splat).StartsWith('SharedAccessSignature ')
            Get-Date -Format 'yyyy' | Out-Null
            """);

        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        Assert.Equal(string.Empty, result.StdErr);
        var lines = result.StdOut.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Contains("""[{"DeviceId":"sensor-1"},{"DeviceId":"sensor-2"}]""", lines);
        Assert.Contains("2", lines);
        Assert.Contains("from Write-Host", lines);
        Assert.Contains("True", lines);
    }

    [Fact]
    public void File_VerboseOfAnAdvancedScript_WritesTheCmdletsVerboseLines()
    {
        var result = RunFile("""
            [CmdletBinding()] param()
            New-IoTHubSasToken -ResourceUri h/devices/d -Key cGFzc3dvcmQ= | Out-Null
            ConvertFrom-IoTHubConnectionString 'HostName=h.net;DeviceId=dev7;SharedAccessKey=c2VjcmV0a2V5c2VjcmV0a2V5'
            """, "-Verbose");

        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        Assert.Contains("VERBOSE: Signing h/devices/d", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("dev7", result.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("c2VjcmV0a2V5c2VjcmV0a2V5", result.StdOut + result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", result.StdOut, StringComparison.Ordinal); // NO_COLOR: plain text
    }

    [Fact]
    public void File_WithAParseError_ExitsOneAndRunsNothing()
    {
        // As pwsh -File: a broken script fails the CI step instead of passing silently (the previous host exited 0).
        var result = RunFile("""
            'started'
            if ( {
            """);

        Assert.Equal(1, result.ExitCode);
        Assert.DoesNotContain("started", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("ParserError", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("Missing closing '}'", result.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public void Command_WithAParseError_ExitsOne()
    {
        var result = HostProcess.Run(null, null, "-Command", "'started'; 'x' | ForEach-Object {");

        Assert.Equal(1, result.ExitCode);
        Assert.DoesNotContain("started", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void Throw_ExitsOneWithTheMessageAndRecommendation_NoStackTrace()
    {
        var result = HostProcess.Run(null, null, "-Command", "$ErrorActionPreference = 'Stop'; New-IoTHubSasToken -ResourceUri r -Key 'bad key'; 'not reached'");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("New-IoTHubSasToken: The Key is not a base64 string", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("Recommendation:", result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("not reached", result.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public void Command_ErrorRecord_CarriesTheErrorIdForCatchBlocks()
    {
        var result = HostProcess.Run(null, null, "-Command",
            "try { New-IoTHubSasToken -ResourceUri r -Key 'bad key' -ErrorAction Stop } catch { $_.FullyQualifiedErrorId }");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("KeyNotBase64,IoTHubMqtt.Commands.Credentials.NewIoTHubSasTokenCommand", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void NonTerminatingError_IsShownAndScriptGoesOn()
    {
        var result = RunFile("ConvertFrom-IoTHubConnectionString 'HostName=h.net'; 'after'");

        Assert.Equal(0, result.ExitCode); // pwsh -File: non-terminating errors do not change the exit code
        Assert.Contains("after", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("DeviceId", result.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public void Exit_WithCode_IsTheProcessExitCode()
    {
        var result = RunFile("'before'; exit 7");

        Assert.Equal(7, result.ExitCode);
        Assert.Contains("before", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownArgument_IsPwshsError_Exit64()
    {
        var result = HostProcess.Run(null, null, "-Bogus");

        Assert.Equal(64, result.ExitCode);
        Assert.Contains("'-Bogus' is not recognized", result.StdErr + result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void Help_NamesTheHostsOwnOptions()
    {
        var result = HostProcess.Run(null, null, "-?");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("-Module <path to IoTHubMqtt.psd1>", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void NoModule_StartsPwshWithoutTheModule()
    {
        var result = HostProcess.Run(null, null, "-NoModule", "-Command", "[bool](Get-Module IoTHubMqtt)");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("False", result.StdOut.Trim());
    }
}
