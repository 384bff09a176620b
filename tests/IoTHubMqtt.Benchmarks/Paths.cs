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

    private static string Built(string projectDirectory, string assembly)
    {
        var path = Path.Combine(RepoRoot(), projectDirectory, "bin", Configuration, "net10.0", assembly);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} was not found: build with -c {Configuration}.");
    }
}
