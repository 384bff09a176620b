using IoTHubMqtt.Core.NanoFramework;

namespace IoTHubMqtt.Commands.NanoFramework;

/// <summary>What <c>Publish-NanoFrameworkApp -PassThru</c> wrote: the image file, its size and the assemblies in flash order.</summary>
public sealed class NanoFrameworkAppInfo
{
    // Internal: Import-Module reflects the public constructors of the module's public types, and a core type in one
    // would load IoTHubMqtt.Core at import instead of at the first command that needs it.
    internal NanoFrameworkAppInfo(string outputPath, DeploymentImage image)
    {
        OutputPath = outputPath;
        Size = image.Length;
        AssemblyCount = image.Assemblies.Count;
        Assemblies = [.. image.Assemblies];
        MissingReferences = [.. image.MissingReferences];
    }

    public string OutputPath { get; }

    /// <summary>Bytes in the image (what the deployment partition must hold).</summary>
    public int Size { get; }

    public int AssemblyCount { get; }

    /// <summary>The assemblies in the order they sit in flash, with offsets from the partition start.</summary>
    public DeploymentAssembly[] Assemblies { get; }

    /// <summary>Assemblies referenced but not in the image.</summary>
    public string[] MissingReferences { get; }

    public override string ToString() => $"{OutputPath} ({Size} bytes, {AssemblyCount} assemblies)";
}
