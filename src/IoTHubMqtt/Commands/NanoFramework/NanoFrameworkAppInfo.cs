using IoTHubMqtt.Core.NanoFramework;

namespace IoTHubMqtt.Commands.NanoFramework;

/// <summary>What <c>Publish-NanoFrameworkApp -PassThru</c> wrote: the image file, its size and the assemblies in flash order.</summary>
public sealed class NanoFrameworkAppInfo(string outputPath, DeploymentImage image)
{
    public string OutputPath { get; } = outputPath;

    /// <summary>Bytes in the image (what the deployment partition must hold).</summary>
    public int Size { get; } = image.Length;

    public int AssemblyCount { get; } = image.Assemblies.Count;

    /// <summary>The assemblies in the order they sit in flash, with offsets from the partition start.</summary>
    public DeploymentAssembly[] Assemblies { get; } = [.. image.Assemblies];

    /// <summary>Assemblies referenced but not in the image.</summary>
    public string[] MissingReferences { get; } = [.. image.MissingReferences];

    public override string ToString() => $"{OutputPath} ({Size} bytes, {AssemblyCount} assemblies)";
}
