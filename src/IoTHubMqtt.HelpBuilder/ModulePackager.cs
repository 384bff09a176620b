using System.Collections;
using System.IO.Compression;
using System.Management.Automation.Language;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;

namespace IoTHubMqtt.HelpBuilder;

/// <summary>
/// Packs a laid-out module folder into the .nupkg that PowerShellGet and PSResourceGet (Publish-PSResource,
/// Install-PSResource, Save-PSResource) read: the module's files at the package root, an &lt;id&gt;.nuspec whose
/// metadata comes from the manifest (version, authors, description, licence and project URLs, release notes, tags
/// with PSModule, PSEdition_*, PSCmdlet_*/PSCommand_* and PSIncludes_Cmdlet), and the OPC parts NuGet writes.
/// </summary>
public static class ModulePackager
{
    private static readonly XNamespace Nuspec = "http://schemas.microsoft.com/packaging/2011/08/nuspec.xsd";
    private static readonly DateTimeOffset FixedTime = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Writes &lt;outputDirectory&gt;/&lt;Name&gt;.&lt;Version&gt;.nupkg and returns its path.</summary>
    public static string Pack(string moduleDirectory, string outputDirectory)
    {
        moduleDirectory = Path.GetFullPath(moduleDirectory);
        var manifestPath = Directory.GetFiles(moduleDirectory, "*.psd1").SingleOrDefault()
            ?? throw new HelpFormatException($"{moduleDirectory} holds no single module manifest (*.psd1).");
        var name = Path.GetFileNameWithoutExtension(manifestPath);
        var manifest = ReadManifest(manifestPath);
        var nuspec = BuildNuspec(name, manifest);
        var version = nuspec.Root!.Element(Nuspec + "metadata")!.Element(Nuspec + "version")!.Value;

        Directory.CreateDirectory(outputDirectory);
        var packagePath = Path.Combine(Path.GetFullPath(outputDirectory), $"{name}.{version}.nupkg");
        var files = Directory.GetFiles(moduleDirectory, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(moduleDirectory, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .ToList();

        using (var stream = File.Create(packagePath))
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create))
        {
            var propertiesPart = $"package/services/metadata/core-properties/{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name + version)))[..32]}.psmdcp";
            WriteText(zip, "_rels/.rels", Relationships(name, propertiesPart).ToString(SaveOptions.DisableFormatting));
            WriteText(zip, $"{name}.nuspec", nuspec.Declaration + Environment.NewLine + nuspec.ToString());
            foreach (var file in files)
            {
                var entry = zip.CreateEntry(EscapePartName(file), CompressionLevel.Optimal);
                entry.LastWriteTime = FixedTime;
                using var target = entry.Open();
                using var source = File.OpenRead(Path.Combine(moduleDirectory, file));
                source.CopyTo(target);
            }

            WriteText(zip, propertiesPart, CoreProperties(name, version, nuspec).ToString(SaveOptions.DisableFormatting));
            WriteText(zip, "[Content_Types].xml", ContentTypes(files).ToString(SaveOptions.DisableFormatting));
        }

        return packagePath;
    }

    /// <summary>The manifest's hashtable, read as data (never run), like Import-PowerShellDataFile.</summary>
    public static Hashtable ReadManifest(string path)
    {
        var ast = Parser.ParseFile(path, out _, out var errors);
        if (errors.Length > 0)
        {
            throw new HelpFormatException($"{path}: {errors[0].Message}");
        }

        var table = ast.Find(a => a is HashtableAst, searchNestedScriptBlocks: false) as HashtableAst
            ?? throw new HelpFormatException($"{path} holds no hashtable.");
        return (Hashtable)table.SafeGetValue();
    }

    public static XDocument BuildNuspec(string name, Hashtable manifest)
    {
        var psData = (manifest["PrivateData"] as Hashtable)?["PSData"] as Hashtable ?? new Hashtable();
        var version = Text(manifest["ModuleVersion"]) ?? throw new HelpFormatException("The manifest has no ModuleVersion.");
        if (Text(psData["Prerelease"]) is { Length: > 0 } prerelease)
        {
            version += "-" + prerelease;
        }

        var description = Text(manifest["Description"]) ?? throw new HelpFormatException("The manifest has no Description: PowerShellGet requires one.");
        var author = Text(manifest["Author"]) ?? throw new HelpFormatException("The manifest has no Author: PowerShellGet requires one.");

        var tags = new List<string>(List(psData["Tags"]));
        tags.Add("PSModule");
        tags.AddRange(List(manifest["CompatiblePSEditions"]).Select(e => "PSEdition_" + e));
        var cmdlets = List(manifest["CmdletsToExport"]).Where(c => !c.Contains('*', StringComparison.Ordinal)).ToList();
        var functions = List(manifest["FunctionsToExport"]).Where(c => !c.Contains('*', StringComparison.Ordinal)).ToList();
        foreach (var command in cmdlets)
        {
            tags.Add("PSCmdlet_" + command);
        }

        foreach (var command in functions)
        {
            tags.Add("PSFunction_" + command);
        }

        foreach (var command in cmdlets.Concat(functions))
        {
            tags.Add("PSCommand_" + command);
        }

        if (cmdlets.Count > 0)
        {
            tags.Add("PSIncludes_Cmdlet");
        }

        if (functions.Count > 0)
        {
            tags.Add("PSIncludes_Function");
        }

        var metadata = new XElement(Nuspec + "metadata",
            new XElement(Nuspec + "id", name),
            new XElement(Nuspec + "version", version),
            new XElement(Nuspec + "authors", author),
            new XElement(Nuspec + "owners", Text(manifest["CompanyName"]) ?? author),
            new XElement(Nuspec + "requireLicenseAcceptance", psData["RequireLicenseAcceptance"] is true ? "true" : "false"));
        Optional(metadata, "licenseUrl", psData["LicenseUri"]);
        Optional(metadata, "projectUrl", psData["ProjectUri"]);
        Optional(metadata, "iconUrl", psData["IconUri"]);
        metadata.Add(new XElement(Nuspec + "description", description));
        Optional(metadata, "releaseNotes", psData["ReleaseNotes"]);
        Optional(metadata, "copyright", manifest["Copyright"]);
        metadata.Add(new XElement(Nuspec + "tags", string.Join(' ', tags.Distinct(StringComparer.OrdinalIgnoreCase))));

        List<XElement> dependencies = manifest["RequiredModules"] switch
        {
            null => [],
            object[] modules => modules.Select(Dependency).ToList(),
            var module => [Dependency(module)],
        };
        if (dependencies.Count > 0)
        {
            metadata.Add(new XElement(Nuspec + "dependencies", dependencies));
        }

        return new XDocument(new XDeclaration("1.0", "utf-8", null), new XElement(Nuspec + "package", metadata));
    }

    private static XElement Dependency(object module)
    {
        if (module is Hashtable spec)
        {
            var element = new XElement(Nuspec + "dependency", new XAttribute("id", Text(spec["ModuleName"]) ?? string.Empty));
            if (Text(spec["RequiredVersion"]) is { } exact)
            {
                element.Add(new XAttribute("version", $"[{exact}]"));
            }
            else if (Text(spec["ModuleVersion"]) is { } minimum)
            {
                element.Add(new XAttribute("version", minimum));
            }

            return element;
        }

        return new XElement(Nuspec + "dependency", new XAttribute("id", Text(module) ?? string.Empty));
    }

    private static void Optional(XElement metadata, string element, object? value)
    {
        if (Text(value) is { Length: > 0 } text)
        {
            metadata.Add(new XElement(Nuspec + element, text));
        }
    }

    private static string? Text(object? value) => value switch
    {
        null => null,
        object[] array => string.Join(Environment.NewLine, array.Select(Convert.ToString)),
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture),
    };

    private static IEnumerable<string> List(object? value) => value switch
    {
        null => [],
        string s => [s],
        object[] array => array.OfType<object>().Select(o => Convert.ToString(o, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty).Where(s => s.Length > 0),
        _ => [Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty],
    };

    private static void WriteText(ZipArchive zip, string entryName, string text)
    {
        var entry = zip.CreateEntry(entryName, CompressionLevel.Optimal);
        entry.LastWriteTime = FixedTime;
        using var writer = new StreamWriter(entry.Open(), new UTF8Encoding(false));
        writer.Write(text);
    }

    /// <summary>OPC part names: each path segment URI-escaped, as NuGet writes them (and unescapes on extract).</summary>
    private static string EscapePartName(string path) => string.Join('/', path.Split('/').Select(Uri.EscapeDataString));

    private static XElement Relationships(string name, string propertiesPart)
    {
        XNamespace r = "http://schemas.openxmlformats.org/package/2006/relationships";
        return new XElement(r + "Relationships",
            new XElement(r + "Relationship", new XAttribute("Type", "http://schemas.microsoft.com/packaging/2010/07/manifest"), new XAttribute("Target", $"/{name}.nuspec"), new XAttribute("Id", "R" + Id(name + "nuspec"))),
            new XElement(r + "Relationship", new XAttribute("Type", "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"), new XAttribute("Target", "/" + propertiesPart), new XAttribute("Id", "R" + Id(name + "psmdcp"))));
    }

    private static string Id(string seed) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(seed)))[..16];

    private static XElement CoreProperties(string name, string version, XDocument nuspec)
    {
        XNamespace cp = "http://schemas.openxmlformats.org/package/2006/metadata/core-properties";
        XNamespace dc = "http://purl.org/dc/elements/1.1/";
        var metadata = nuspec.Root!.Element(Nuspec + "metadata")!;
        return new XElement(cp + "coreProperties",
            new XAttribute(XNamespace.Xmlns + "dc", dc),
            new XElement(dc + "creator", metadata.Element(Nuspec + "authors")!.Value),
            new XElement(dc + "description", metadata.Element(Nuspec + "description")!.Value),
            new XElement(dc + "identifier", name),
            new XElement(cp + "version", version),
            new XElement(cp + "keywords", metadata.Element(Nuspec + "tags")!.Value),
            new XElement(cp + "lastModifiedBy", "iothubmqtt-helpbuilder"));
    }

    private static XElement ContentTypes(IEnumerable<string> files)
    {
        XNamespace t = "http://schemas.openxmlformats.org/package/2006/content-types";
        var extensions = files.Select(f => Path.GetExtension(f).TrimStart('.')).Where(e => e.Length > 0)
            .Append("nuspec").Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal);
        var types = new XElement(t + "Types",
            new XElement(t + "Default", new XAttribute("Extension", "rels"), new XAttribute("ContentType", "application/vnd.openxmlformats-package.relationships+xml")),
            new XElement(t + "Default", new XAttribute("Extension", "psmdcp"), new XAttribute("ContentType", "application/vnd.openxmlformats-package.core-properties+xml")));
        foreach (var extension in extensions)
        {
            types.Add(new XElement(t + "Default", new XAttribute("Extension", extension), new XAttribute("ContentType", "application/octet")));
        }

        // Files without an extension (LICENSE) are typed by an override, as NuGet does.
        foreach (var file in files.Where(f => Path.GetExtension(f).Length == 0))
        {
            types.Add(new XElement(t + "Override", new XAttribute("PartName", "/" + EscapePartName(file)), new XAttribute("ContentType", "application/octet")));
        }

        return types;
    }
}
