using System.Reflection;

namespace IoTHubMqtt.Pwsh.Tests;

/// <summary>Paths and versions the build stamps into this assembly.</summary>
public static class TestPaths
{
    private static string Metadata(string key) =>
        typeof(TestPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
        ?? throw new InvalidOperationException($"Assembly metadata {key} is missing.");

    public static string ModuleManifest => Metadata("ModuleManifest");

    public static string ModuleDirectory => Path.GetDirectoryName(ModuleManifest)!;

    public static string RepoRoot => Metadata("RepoRoot");

    public static string TestsDirectory => Path.Combine(RepoRoot, "tests");

    public static string ModuleVersion => Metadata("ModuleVersion");

    public static string PowerShellToolVersion => Metadata("PowerShellToolVersion");

    public static string PesterVersion => Metadata("PesterVersion");

    /// <summary>NuGet's global packages folder, where 'dotnet tool restore' puts the pwsh tool.</summary>
    public static string NuGetPackageRoot => Metadata("NuGetPackageRoot");

    /// <summary>A folder for PSModulePath that holds Pester/&lt;version&gt;/ (the NuGet package's tools/ folder).</summary>
    public static string PesterModuleRoot => Metadata("PesterModuleRoot");
}
