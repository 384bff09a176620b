using System.Collections;
using System.IO.Compression;
using System.Management.Automation.Language;
using IoTHubMqtt.HelpBuilder;
using IoTHubMqtt.Module.Tests.Harness;
using NuGet.Packaging;

namespace IoTHubMqtt.Module.Tests;

/// <summary>
/// The .nupkg that build.ps1 -Task Package and 'dotnet build -p:PackModule=true' write: read with NuGet's own package
/// reader (what PSResourceGet installs with), its metadata matched against the manifest, and installed into a clean
/// module path where a new PowerShell process imports it by name and runs a cmdlet.
/// </summary>
public sealed class PackageTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "iothubmqtt-package-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static Hashtable Manifest()
    {
        var ast = Parser.ParseFile(TestPaths.ModuleManifest, out _, out var errors);
        Assert.Empty(errors);
        return (Hashtable)((HashtableAst)ast.Find(a => a is HashtableAst, false)!).SafeGetValue();
    }

    [Fact]
    public void Package_HasTheModuleFolderAtItsRoot_AndNuspecMetadataFromTheManifest()
    {
        var path = ModulePackager.Pack(TestPaths.ModuleDirectory, Path.Combine(root, "packages"));
        var manifest = Manifest();
        var psData = (Hashtable)((Hashtable)manifest["PrivateData"]!)["PSData"]!;

        Assert.Equal($"IoTHubMqtt.{manifest["ModuleVersion"]}.nupkg", Path.GetFileName(path));
        using var reader = new PackageArchiveReader(path);
        var nuspec = reader.NuspecReader;
        Assert.Equal("IoTHubMqtt", nuspec.GetId());
        Assert.Equal((string)manifest["ModuleVersion"]!, nuspec.GetVersion().ToNormalizedString());
        Assert.Equal((string)manifest["Description"]!, nuspec.GetDescription());
        Assert.Equal((string)manifest["Author"]!, nuspec.GetAuthors());
        Assert.Equal((string)psData["LicenseUri"]!, nuspec.GetLicenseUrl());
        Assert.Equal((string)psData["ProjectUri"]!, nuspec.GetProjectUrl());
        Assert.Equal((string)psData["ReleaseNotes"]!, nuspec.GetReleaseNotes());
        Assert.False(string.IsNullOrWhiteSpace(nuspec.GetCopyright()));

        var tags = nuspec.GetTags().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var cmdlets = ((object[])manifest["CmdletsToExport"]!).Cast<string>().ToList();
        Assert.Contains("PSModule", tags);
        Assert.Contains("PSIncludes_Cmdlet", tags);
        Assert.Contains("PSEdition_Core", tags);
        Assert.Equal(cmdlets.Order(StringComparer.Ordinal), tags.Where(t => t.StartsWith("PSCmdlet_", StringComparison.Ordinal)).Select(t => t["PSCmdlet_".Length..]).Order(StringComparer.Ordinal));
        Assert.Equal(cmdlets.Order(StringComparer.Ordinal), tags.Where(t => t.StartsWith("PSCommand_", StringComparison.Ordinal)).Select(t => t["PSCommand_".Length..]).Order(StringComparer.Ordinal));
        Assert.All(((object[])psData["Tags"]!).Cast<string>(), t => Assert.Contains(t, tags));

        // The module folder's content, at the package root (not under IoTHubMqtt/<version>/), every file of it.
        var files = reader.GetFiles().ToHashSet(StringComparer.Ordinal);
        foreach (var file in new[] { "IoTHubMqtt.psd1", "IoTHubMqtt.dll", "IoTHubMqtt.format.ps1xml", "LICENSE", "dependencies/IoTHubMqtt.Core.dll", "en-US/IoTHubMqtt.dll-Help.xml" })
        {
            Assert.Contains(file, files);
        }

        var expected = Directory.GetFiles(TestPaths.ModuleDirectory, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(TestPaths.ModuleDirectory, f).Replace('\\', '/'));
        Assert.All(expected, f => Assert.Contains(f, files));
        using var zip = ZipFile.OpenRead(path);
        Assert.Contains(zip.Entries, e => e.FullName == "[Content_Types].xml");
        Assert.Contains(zip.Entries, e => e.FullName == "_rels/.rels");
    }

    [Fact]
    public void Package_InstalledIntoACleanModulePath_ImportsByName_AndRunsACmdlet()
    {
        var path = ModulePackager.Pack(TestPaths.ModuleDirectory, Path.Combine(root, "packages"));
        var modules = Path.Combine(root, "Modules");
        var installed = Path.Combine(modules, "IoTHubMqtt", TestPaths.ModuleVersion);

        // What Install-PSResource does: the package's files, without NuGet's own parts, in <path>/<Name>/<Version>/.
        using (var reader = new PackageArchiveReader(path))
        {
            var moduleFiles = reader.GetFiles().Where(f => f != "IoTHubMqtt.nuspec" && f != "[Content_Types].xml" && !f.StartsWith("_rels/", StringComparison.Ordinal) && !f.StartsWith("package/", StringComparison.Ordinal));
            reader.CopyFiles(installed, moduleFiles, (source, target, stream) =>
            {
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                using var file = File.Create(target);
                stream.CopyTo(file);
                return target;
            }, NuGet.Common.NullLogger.Instance, CancellationToken.None);
        }

        var script = """
            Import-Module IoTHubMqtt -ErrorAction Stop
            'base=' + (Get-Module IoTHubMqtt).ModuleBase
            'commands=' + @(Get-Command -Module IoTHubMqtt).Count
            'device=' + (ConvertFrom-IoTHubConnectionString 'HostName=pkg.azure-devices.net;DeviceId=from-package;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAA==').DeviceId
            'token=' + (New-IoTHubSasToken -ResourceUri 'pkg.azure-devices.net/devices/from-package' -Key 'AAAAAAAAAAAAAAAAAAAAAA==').StartsWith('SharedAccessSignature ')
            'help=' + (Get-Help Install-Esp32Firmware).Synopsis
            """;
        var result = HostProcess.Run(TimeSpan.FromMinutes(2), new Dictionary<string, string> { ["PSModulePath"] = modules, ["IOTHUBMQTT_MODULE"] = "" }, "-NoModule", "-Command", script);

        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        var lines = result.StdOut.Split('\n').Select(l => l.Trim()).ToList();
        Assert.Contains("base=" + installed, lines);
        Assert.Contains("commands=" + ((object[])Manifest()["CmdletsToExport"]!).Length, lines);
        Assert.Contains("device=from-package", lines);
        Assert.Contains("token=True", lines);
        Assert.Contains(lines, l => l.StartsWith("help=", StringComparison.Ordinal) && l.Length > "help=".Length + 10);
    }
}
