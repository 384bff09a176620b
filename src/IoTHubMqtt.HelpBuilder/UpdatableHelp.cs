using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace IoTHubMqtt.HelpBuilder;

/// <summary>
/// The files Update-Help and Save-Help fetch from the manifest's HelpInfoUri: <c>IoTHubMqtt_&lt;GUID&gt;_HelpInfo.xml</c>
/// (the culture and its version) and <c>IoTHubMqtt_&lt;GUID&gt;_en-US_HelpContent.zip</c> (the compiled help, as laid out
/// in the module's en-US folder; .zip is the format pwsh reads on every platform). Published beside each release;
/// <c>Update-Help -Module IoTHubMqtt -SourcePath &lt;folder&gt;</c> installs them from a folder too.
/// </summary>
public static partial class UpdatableHelp
{
    private static readonly XNamespace HelpInfo = "http://schemas.microsoft.com/powershell/help/2010/05";

    public static IReadOnlyList<string> Write(string moduleDirectory, string outputDirectory)
    {
        var manifest = File.ReadAllText(Path.Combine(moduleDirectory, "IoTHubMqtt.psd1"));
        var guid = Value(manifest, "GUID");
        var version = Version.Parse(Value(manifest, "ModuleVersion"));
        var helpInfoUri = Value(manifest, "HelpInfoURI");
        Directory.CreateDirectory(outputDirectory);

        var culture = "en-US";
        var zip = Path.Combine(outputDirectory, $"IoTHubMqtt_{guid}_{culture}_HelpContent.zip");
        File.Delete(zip);
        using (var archive = ZipFile.Open(zip, ZipArchiveMode.Create))
        {
            foreach (var file in Directory.GetFiles(Path.Combine(moduleDirectory, culture)).Order(StringComparer.Ordinal))
            {
                archive.CreateEntryFromFile(file, Path.GetFileName(file), CompressionLevel.Optimal);
            }
        }

        var info = Path.Combine(outputDirectory, $"IoTHubMqtt_{guid}_HelpInfo.xml");
        new XDocument(
            new XDeclaration("1.0", "utf-8", null),
            new XElement(HelpInfo + "HelpInfo",
                new XElement(HelpInfo + "HelpContentURI", helpInfoUri),
                new XElement(HelpInfo + "SupportedUICultures",
                    new XElement(HelpInfo + "UICulture",
                        new XElement(HelpInfo + "UICultureName", culture),
                        new XElement(HelpInfo + "UICultureVersion", new Version(version.Major, version.Minor, Math.Max(version.Build, 0), Math.Max(version.Revision, 0)).ToString())))))
            .Save(info);
        return [info, zip];
    }

    private static string Value(string manifest, string key)
    {
        var match = Regex.Match(manifest, $@"(?im)^\s*{key}\s*=\s*'([^']+)'");
        return match.Success ? match.Groups[1].Value : throw new HelpFormatException($"The manifest has no {key}.");
    }
}
