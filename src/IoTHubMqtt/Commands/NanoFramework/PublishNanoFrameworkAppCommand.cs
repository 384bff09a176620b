using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.NanoFramework;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.NanoFramework;

/// <summary>
/// <para type="synopsis">Builds a nanoFramework deployment image from an app's .pe files.</para>
/// <para type="description">Reads the .pe files in a folder (the app's bin\Release folder: the app and every referenced assembly),
/// or the .pe files given one by one or from the pipeline, checks each nanoFramework assembly header and CRC, orders them
/// (mscorlib first, each assembly after those it references), pads each to 4 bytes and writes them one after the other to
/// -OutputPath. Install-Esp32Firmware writes such an image to the board's deployment partition.</para>
/// </summary>
[Cmdlet(VerbsData.Publish, "NanoFrameworkApp", SupportsShouldProcess = true)]
[OutputType(typeof(NanoFrameworkAppInfo))]
public sealed class PublishNanoFrameworkAppCommand : IoTHubCmdlet
{
    private readonly List<string> inputs = [];

    /// <summary>The folder with the app's .pe files, or .pe files (from the pipeline too: Get-ChildItem *.pe | Publish-NanoFrameworkApp).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName", "PSPath")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = [];

    /// <summary>The image file to write.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string OutputPath { get; set; } = string.Empty;

    /// <summary>Size of the target's deployment partition in bytes: a larger image is refused.</summary>
    [Parameter]
    [ValidateRange(4, int.MaxValue)]
    public long PartitionSize { get; set; }

    /// <summary>Writes an object describing the image.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var path in Path)
        {
            inputs.Add(SessionState.Path.GetUnresolvedProviderPathFromPSPath(path));
        }
    }

    protected override void EndProcessing()
    {
        var output = SessionState.Path.GetUnresolvedProviderPathFromPSPath(OutputPath);
        long? maximum = MyInvocation.BoundParameters.ContainsKey(nameof(PartitionSize)) ? PartitionSize : null;
        DeploymentImage? image = null;
        if (inputs.Count > 1 && inputs.Any(Directory.Exists))
        {
            ThrowTerminatingError(InvalidArgument(ErrorIds.NanoFrameworkMixedInput, "Give one folder, or .pe files, not both.", "Pass the bin folder alone, or only .pe files."));
        }

        Terminating(() => image = inputs.Count == 1
            ? DeploymentImage.FromPath(inputs[0], maximum)
            : DeploymentImage.FromFiles(inputs.Select(ReadPe).ToList(), maximum));
        var source = inputs.Count == 1 ? inputs[0] : $"{inputs.Count} files";
        foreach (var assembly in image!.Assemblies)
        {
            WriteVerbose($"0x{assembly.Offset:X6} {assembly.Name} {assembly.Version} ({assembly.Size} bytes, padded {assembly.PaddedSize})");
        }

        foreach (var missing in image.MissingReferences)
        {
            WriteWarning($"'{missing}' is referenced but not in {source}: the device must already have it, or the app will not start.");
        }

        if (!ShouldProcess(output, $"Write a {image.Length}-byte nanoFramework deployment image ({image.Assemblies.Count} assemblies)"))
        {
            return;
        }

        Terminating(() =>
        {
            try
            {
                image.WriteTo(output);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new Core.Errors.IoTHubMqttException(ErrorIds.DeploymentImageWriteFailed,
                    $"Could not write '{output}': {ex.Message}", "Check the folder exists and is writable.", output, ex);
            }
        }, output);

        if (PassThru)
        {
            WriteObject(new NanoFrameworkAppInfo(output, image));
        }
    }

    private static (string FileName, byte[] Content) ReadPe(string path)
    {
        if (!File.Exists(path))
        {
            throw new Core.Errors.IoTHubMqttException(ErrorIds.NanoFrameworkPathNotFound,
                $"'{path}' does not exist.", "Pass the app's .pe files.", path);
        }

        return (System.IO.Path.GetFileName(path), File.ReadAllBytes(path));
    }
}
