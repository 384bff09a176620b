using System.Diagnostics;
using System.Text.RegularExpressions;

namespace IoTHubMqtt.Pwsh.Tests;

/// <summary>
/// Wiping a board's whole flash is high impact: in a real pwsh that cannot ask (started with -NonInteractive, or a CI
/// job's pwsh whose input has ended), Clear-Esp32Flash and Install-Esp32Firmware -Erase stop with
/// Esp32ConfirmationRequired before the port is opened, and the flash keeps every byte; -Force goes ahead, and -WhatIf
/// with -Force still only describes.
/// </summary>
public sealed class Esp32EraseConfirmTests
{
    private const string Script = """
        param([string] $Root)
        $ErrorActionPreference = 'Stop'
        Import-Module $env:IOTHUBMQTT_MODULE
        function Attempt([string] $Name, [scriptblock] $Block) {
            try { & $Block | Out-Null; [Console]::Out.WriteLine("@@$Name=ok") }
            catch { [Console]::Out.WriteLine("@@$Name=" + $_.FullyQualifiedErrorId) }
        }
        function Show([string] $Name, $Value) { [Console]::Out.WriteLine("@@$Name=$Value") }

        $sim = Start-Esp32Simulator -Chip Esp32C3
        $app = [byte[]]::new(4096)
        $app[0] = 0xE9; $app[1] = 1; $app[12] = 5; $app[28] = 0xD0; $app[29] = 0x0F; $app[4095] = 0xEF
        $image = Join-Path $Root 'app.bin'
        [IO.File]::WriteAllBytes($image, $app)
        $data = Join-Path $Root 'data.bin'
        [IO.File]::WriteAllBytes($data, [byte[]](0x11, 0x22, 0x33, 0x44))
        $sim.LoadFlash($data, 0x200000)

        Attempt 'clear' { Clear-Esp32Flash -Port $sim.Port }
        Attempt 'install' { Install-Esp32Firmware -Port $sim.Port -Image "0x10000=$image" -Erase }
        Attempt 'whatif' { Install-Esp32Firmware -Port $sim.Port -Image "0x10000=$image" -Erase -Force -WhatIf }
        Show 'syncs' $sim.CountOf('SYNC')
        Show 'kept' ([BitConverter]::ToString($sim.ReadFlash(0x200000, 4)))

        Attempt 'installForce' { Install-Esp32Firmware -Port $sim.Port -Image "0x10000=$image" -Erase -Force }
        Show 'erased' ([BitConverter]::ToString($sim.ReadFlash(0x200000, 4)))
        Show 'app' ([BitConverter]::ToString($sim.ReadFlash(0x10000, 2)))

        $sim.LoadFlash($data, 0x200000)
        Attempt 'clearForce' { Clear-Esp32Flash -Port $sim.Port -Force }
        Show 'erasedAgain' ([BitConverter]::ToString($sim.ReadFlash(0x200000, 4)))
        Show 'eraseCommands' $sim.CountOf('ERASE_FLASH')
        $sim | Stop-Esp32Simulator
        """;

    [Theory]
    [InlineData(true)] // pwsh -NonInteractive
    [InlineData(false)] // an interactive pwsh whose standard input has ended (a CI runner's)
    public async Task NonInteractive_EraseWithoutForce_Refused_FlashKept_WithForce_Erased(bool nonInteractive)
    {
        var root = Directory.CreateTempSubdirectory("iothubmqtt-erase-").FullName;
        try
        {
            var script = Path.Combine(root, "erase.ps1");
            await File.WriteAllTextAsync(script, Script, TestContext.Current.CancellationToken);
            var output = await RunAsync(nonInteractive, ["-File", script, "-Root", root]);
            // Each value on a line of its own after @@ (a prompt the host printed may precede it on the line).
            var values = Regex.Matches(output, "@@(\\w+)=([^\r\n]*)").GroupBy(m => m.Groups[1].Value).ToDictionary(g => g.Key, g => g.Last().Groups[2].Value.Trim());
            string Value(string key) => values.TryGetValue(key, out var v) ? v : throw new Xunit.Sdk.XunitException($"'{key}' missing from pwsh's output:\n{output}");

            Assert.Equal("Esp32ConfirmationRequired,IoTHubMqtt.Commands.Esp32.ClearEsp32FlashCommand", Value("clear"));
            Assert.Equal("Esp32ConfirmationRequired,IoTHubMqtt.Commands.Esp32.InstallEsp32FirmwareCommand", Value("install"));
            Assert.Equal("ok", Value("whatif"));
            Assert.Equal("0", Value("syncs")); // no port was opened
            Assert.Equal("11-22-33-44", Value("kept"));

            Assert.Equal("ok", Value("installForce"));
            Assert.Equal("FF-FF-FF-FF", Value("erased"));
            Assert.Equal("E9-01", Value("app"));
            Assert.Equal("ok", Value("clearForce"));
            Assert.Equal("FF-FF-FF-FF", Value("erasedAgain"));
            Assert.Equal("2", Value("eraseCommands"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Runs pwsh with its standard input closed at once, as a CI step's; returns what it printed.</summary>
    private static async Task<string> RunAsync(bool nonInteractive, string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])[Pwsh.PwshAssembly, "-NoProfile", .. nonInteractive ? ["-NonInteractive"] : Array.Empty<string>(), .. arguments])
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in Pwsh.Environment(new Dictionary<string, string> { ["TERM"] = "dumb" }))
        {
            start.Environment[name] = value;
        }

        using var pwsh = Process.Start(start)!;
        pwsh.StandardInput.Close();
        var stdout = pwsh.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = pwsh.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var guard = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        guard.CancelAfter(TimeSpan.FromMinutes(5)); // against a hang only
        try
        {
            await pwsh.WaitForExitAsync(guard.Token);
        }
        catch (OperationCanceledException)
        {
            pwsh.Kill(entireProcessTree: true);
            throw;
        }

        return await stdout + "\n" + await stderr;
    }
}
