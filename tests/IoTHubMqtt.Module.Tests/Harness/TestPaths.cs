using System.Reflection;

namespace IoTHubMqtt.Module.Tests.Harness;

/// <summary>Paths the build stamps into this assembly: the laid-out module, the repo root, the Host.</summary>
public static class TestPaths
{
    private static string Metadata(string key) =>
        typeof(TestPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
        ?? throw new InvalidOperationException($"Assembly metadata {key} is missing.");

    public static string ModuleManifest => Metadata("ModuleManifest");

    public static string ModuleDirectory => Path.GetDirectoryName(ModuleManifest)!;

    public static string RepoRoot => Metadata("RepoRoot");

    public static string ModuleVersion => Metadata("ModuleVersion");

    public static string HostAssembly => Metadata("HostAssembly");

    public static string ConflictingMqttnet => Metadata("ConflictingMqttnet");

    public static string FirmwareDeviceAssembly => Metadata("FirmwareDeviceAssembly");
}
