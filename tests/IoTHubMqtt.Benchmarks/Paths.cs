namespace IoTHubMqtt.Benchmarks;

/// <summary>Where the built module and host are, from this program's own location.</summary>
internal static class Paths
{
#if DEBUG
    public const string Configuration = "Debug";
#else
    public const string Configuration = "Release";
#endif

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "IoTHubMqtt.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (IoTHubMqtt.sln) was not found above " + AppContext.BaseDirectory);
    }

    public static string ModuleManifest()
    {
        var candidate = Path.Combine(RepoRoot(), "out", "IoTHubMqtt");
        return Directory.Exists(candidate)
            ? Directory.GetFiles(candidate, "IoTHubMqtt.psd1", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Last()
            : throw new InvalidOperationException("Build the module first (dotnet build): out/IoTHubMqtt was not found.");
    }

    public static string HostAssembly() => Built(Path.Combine("src", "IoTHubMqtt.Host"), "iothubmqtt-host.dll");

    /// <summary>
    /// Real pwsh: the PowerShell dotnet tool pinned in .config/dotnet-tools.json, restored ('dotnet tool restore') into
    /// NuGet's global packages folder; run as 'dotnet pwsh.dll' (what 'dotnet pwsh' runs, without the shim's process).
    /// </summary>
    public static string PwshAssembly()
    {
        var manifest = File.ReadAllText(Path.Combine(RepoRoot(), ".config", "dotnet-tools.json"));
        var version = System.Text.RegularExpressions.Regex.Match(manifest, "\"powershell\"\\s*:\\s*\\{\\s*\"version\"\\s*:\\s*\"([^\"]+)\"").Groups[1].Value;
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var tool = Path.Combine(packages, "powershell", version, "tools");
        var os = OperatingSystem.IsWindows() ? "win" : "unix";
        return (Directory.Exists(tool) ? Directory.GetFiles(tool, "pwsh.dll", SearchOption.AllDirectories).FirstOrDefault(f => Path.GetFileName(Path.GetDirectoryName(f)) == os) : null)
            ?? throw new InvalidOperationException($"pwsh {version} is not restored under {tool}: run 'dotnet tool restore'.");
    }

    private static string Built(string projectDirectory, string assembly)
    {
        var path = Path.Combine(RepoRoot(), projectDirectory, "bin", Configuration, "net10.0", assembly);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} was not found: build with -c {Configuration}.");
    }
}
