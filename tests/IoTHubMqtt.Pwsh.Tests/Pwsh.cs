using System.Diagnostics;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Pwsh.Tests;

/// <summary>
/// Real pwsh: the PowerShell dotnet tool pinned in .config/dotnet-tools.json, started as 'dotnet pwsh.dll' (what
/// 'dotnet pwsh' runs, without the tool shim's extra process), with Pester on PSModulePath.
/// </summary>
public static class Pwsh
{
    private static readonly Lazy<string> Assembly = new(Locate);

    /// <summary>The tool's pwsh.dll; fails with how to get it when 'dotnet tool restore' has not run.</summary>
    public static string PwshAssembly => Assembly.Value;

    /// <summary>Starts <c>pwsh -NoProfile -NonInteractive</c> with <paramref name="arguments"/>.</summary>
    public static RunningProcess Start(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var env = Environment(environment);
        return ExternalProcess.Start("dotnet", env, [PwshAssembly, "-NoProfile", "-NonInteractive", .. arguments]);
    }

    /// <summary>Runs a pwsh command line to its end.</summary>
    public static Task<(int ExitCode, string Output, string Error)> RunAsync(TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var process = Start(environment, arguments);
        return WaitAndDispose(process, timeout);
    }

    /// <summary>Runs script text with <c>pwsh -File</c> (written to a temporary .ps1), passing <paramref name="scriptArguments"/>.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunScriptAsync(string script, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment = null, params string[] scriptArguments)
    {
        var path = Path.Combine(Path.GetTempPath(), $"iothubmqtt-pwsh-{Guid.NewGuid():N}.ps1");
        await File.WriteAllTextAsync(path, script);
        try
        {
            return await RunAsync(timeout, environment, ["-File", path, .. scriptArguments]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>The environment a pwsh child gets: Pester findable by name, no telemetry or update check, the built module named.</summary>
    public static Dictionary<string, string> Environment(IReadOnlyDictionary<string, string>? extra = null)
    {
        // Every pwsh child is started with an environment from here: it also gets the SIGINT a terminal gives.
        InterruptSignal.DefaultForChildren();
        var env = new Dictionary<string, string>
        {
            ["PSModulePath"] = TestPaths.PesterModuleRoot,
            ["IOTHUBMQTT_MODULE"] = TestPaths.ModuleManifest,
            ["POWERSHELL_TELEMETRY_OPTOUT"] = "1",
            ["POWERSHELL_UPDATECHECK"] = "Off",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["NO_COLOR"] = "1",
        };
        foreach (var (name, value) in extra ?? new Dictionary<string, string>())
        {
            env[name] = value;
        }

        return env;
    }

    private static async Task<(int ExitCode, string Output, string Error)> WaitAndDispose(RunningProcess process, TimeSpan timeout)
    {
        using (process)
        {
            return await process.WaitAsync(timeout);
        }
    }

    private static string Locate()
    {
        // dotnet tool restore puts the tool in the NuGet global packages folder: powershell/<version>/tools/<tfm>/any/<os>/pwsh.dll.
        var tool = Path.Combine(TestPaths.NuGetPackageRoot, "powershell", TestPaths.PowerShellToolVersion, "tools");
        var os = OperatingSystem.IsWindows() ? "win" : "unix";
        var found = Directory.Exists(tool)
            ? Directory.GetFiles(tool, "pwsh.dll", SearchOption.AllDirectories).Where(f => Path.GetFileName(Path.GetDirectoryName(f)) == os).OrderDescending(StringComparer.Ordinal).FirstOrDefault()
            : null;
        return found ?? throw new InvalidOperationException(
            $"pwsh {TestPaths.PowerShellToolVersion} is not restored under {tool}: run 'dotnet tool restore' in {TestPaths.RepoRoot} (building this project does).");
    }
}
