using System.Buffers.Binary;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.NanoFramework;

/// <summary>One assembly inside a deployment image.</summary>
public sealed record DeploymentAssembly(string Name, Version Version, string FileName, int Offset, int Size, int PaddedSize, IReadOnlyList<string> References);

/// <summary>
/// A nanoFramework deployment image: the app's and its references' <c>.pe</c> files, each padded with zeros to a multiple of
/// 4 bytes, concatenated with no header. It is written at the start of the deployment partition (data, subtype 0x84), which the
/// runtime walks at boot from one assembly header to the next (rounded up to 4 bytes) until it meets erased flash.
/// Order: mscorlib first, then each assembly after the assemblies it references, ties by name. The runtime resolves references
/// only after loading every assembly, so the order is not needed for correctness; this one is deterministic (same inputs, same
/// bytes) and puts the core library first, as the nanoFramework deployers do.
/// </summary>
public sealed class DeploymentImage
{
    private readonly byte[] content;

    private DeploymentImage(byte[] content, IReadOnlyList<DeploymentAssembly> assemblies, IReadOnlyList<string> missingReferences)
    {
        this.content = content;
        Assemblies = assemblies;
        MissingReferences = missingReferences;
    }

    public IReadOnlyList<DeploymentAssembly> Assemblies { get; }

    /// <summary>Assemblies referenced by the image but not in it (they must already be on the device, or the app will not start).</summary>
    public IReadOnlyList<string> MissingReferences { get; }

    public int Length => content.Length;

    public ReadOnlyMemory<byte> Content => content;

    /// <summary>Builds an image from the <c>*.pe</c> files in a folder (other files, e.g. .dll and .pdbx, are skipped) or from one file.</summary>
    public static DeploymentImage FromPath(string path, long? maximumSize = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string[] files;
        if (Directory.Exists(path))
        {
            files = Directory.GetFiles(path, "*", SearchOption.TopDirectoryOnly)
                .Where(f => string.Equals(Path.GetExtension(f), ".pe", StringComparison.OrdinalIgnoreCase))
                .ToArray();
            if (files.Length == 0)
            {
                throw new IoTHubMqttException(ErrorIds.NanoFrameworkNoPeFiles,
                    $"The folder '{path}' has no .pe files.", "Build the nanoFramework app and pass its bin\\Release (or bin\\Debug) folder.", path);
            }
        }
        else if (File.Exists(path))
        {
            files = [path];
        }
        else
        {
            throw new IoTHubMqttException(ErrorIds.NanoFrameworkPathNotFound,
                $"'{path}' does not exist.", "Pass the folder that holds the app's .pe files.", path);
        }

        return FromFiles(files.Select(f => (Path.GetFileName(f), File.ReadAllBytes(f))), maximumSize);
    }

    /// <summary>Builds an image from named <c>.pe</c> contents.</summary>
    public static DeploymentImage FromFiles(IEnumerable<(string FileName, byte[] Content)> files, long? maximumSize = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        var parsed = new Dictionary<string, (NanoAssemblyHeader Header, string FileName, byte[] Content)>(StringComparer.Ordinal);
        foreach (var (fileName, bytes) in files)
        {
            if (!string.Equals(Path.GetExtension(fileName), ".pe", StringComparison.OrdinalIgnoreCase))
            {
                throw new IoTHubMqttException(ErrorIds.NanoFrameworkNotPeFile,
                    $"'{fileName}' is not a .pe file.", "Pass .pe files (the nanoFramework build writes them beside each .dll).", fileName);
            }

            var header = NanoAssemblyHeader.Parse(bytes, fileName);
            if (parsed.TryGetValue(header.Name, out var existing))
            {
                throw new IoTHubMqttException(ErrorIds.NanoFrameworkDuplicateAssembly,
                    $"Assembly '{header.Name}' is in both '{existing.FileName}' and '{fileName}'.", "Keep one copy of each assembly.", fileName);
            }

            parsed.Add(header.Name, (header, fileName, bytes));
        }

        if (parsed.Count == 0)
        {
            throw new IoTHubMqttException(ErrorIds.NanoFrameworkNoPeFiles, IoTHubErrorKind.InvalidArgument, "No .pe files were given.", "Pass the app's .pe files.", null);
        }

        var order = Order(parsed.ToDictionary(p => p.Key, p => p.Value.Header.References, StringComparer.Ordinal));
        var total = order.Sum(n => (long)Pad(parsed[n].Content.Length));
        if (maximumSize is { } max && total > max)
        {
            throw new IoTHubMqttException(ErrorIds.NanoFrameworkImageTooLarge,
                $"The deployment image is {total} bytes but the deployment partition holds {max}.", "Remove unused references, or use a partition table with a larger deployment partition.", null);
        }

        var image = new byte[total];
        var assemblies = new List<DeploymentAssembly>(order.Count);
        var offset = 0;
        foreach (var name in order)
        {
            var (header, fileName, bytes) = parsed[name];
            bytes.CopyTo(image, offset);
            assemblies.Add(new DeploymentAssembly(header.Name, header.Version, fileName, offset, bytes.Length, Pad(bytes.Length), header.References));
            offset += Pad(bytes.Length);
        }

        var missing = parsed.Values.SelectMany(p => p.Header.References).Where(r => !parsed.ContainsKey(r)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        return new DeploymentImage(image, assemblies, missing);
    }

    /// <summary>
    /// Checks a deployment image file as the runtime will walk it at boot: one nanoFramework assembly after another (each
    /// header and content CRC checked, each padded to 4 bytes) to the end of the file. Returns the assemblies' names.
    /// </summary>
    public static IReadOnlyList<string> Validate(ReadOnlySpan<byte> image, string name)
    {
        if (image.Length == 0)
        {
            throw new IoTHubMqttException(ErrorIds.Esp32EmptyImage,
                $"The deployment image '{name}' is empty; writing it would only erase the deployment partition. Nothing was written.",
                "Build the app and pass its deployment image (Publish-NanoFrameworkApp makes one).", name);
        }

        var names = new List<string>();
        var offset = 0;
        while (offset < image.Length)
        {
            var rest = image[offset..];
            if (rest.Length < NanoAssemblyHeader.Size || !rest.StartsWith(NanoAssemblyHeader.Marker))
            {
                throw new IoTHubMqttException(ErrorIds.NanoFrameworkDeploymentImageInvalid,
                    $"'{name}' is not a nanoFramework deployment image: there is no assembly at byte {offset} (each assembly starts with the NFMRK2 marker). Nothing was written.",
                    "Pass the deployment image of a built app (Publish-NanoFrameworkApp makes one from the .pe files).", name);
            }

            var size = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(rest[(NanoAssemblyHeader.StartOfTablesOffset + (4 * NanoAssemblyHeader.EndOfAssemblyTable))..]), (uint)rest.Length);
            var header = NanoAssemblyHeader.Parse(rest[..Math.Max(size, NanoAssemblyHeader.Size)], $"{name} (assembly at byte {offset})");
            names.Add(header.Name);
            offset += Pad(header.TotalSize);
        }

        return names;
    }

    /// <summary>Writes the image to a file.</summary>
    public void WriteTo(string path) => File.WriteAllBytes(path, content);

    private static int Pad(int length) => (length + 3) & ~3;

    private static List<string> Order(Dictionary<string, IReadOnlyList<string>> references)
    {
        var result = new List<string>(references.Count);
        var placed = new HashSet<string>(StringComparer.Ordinal);
        var visiting = new HashSet<string>(StringComparer.Ordinal);

        void Visit(string name)
        {
            if (placed.Contains(name) || !visiting.Add(name))
            {
                return; // already placed, or a cycle (not valid in nanoFramework; keep going deterministically)
            }

            foreach (var dependency in references[name].Where(references.ContainsKey).Order(StringComparer.Ordinal))
            {
                Visit(dependency);
            }

            visiting.Remove(name);
            placed.Add(name);
            result.Add(name);
        }

        if (references.ContainsKey("mscorlib"))
        {
            Visit("mscorlib");
        }

        foreach (var name in references.Keys.Order(StringComparer.Ordinal))
        {
            Visit(name);
        }

        return result;
    }
}
