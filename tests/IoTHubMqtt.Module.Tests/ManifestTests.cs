using System.Collections;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests;

public sealed class ManifestTests : IDisposable
{
    private readonly PowerShellSession ps = new(importModule: false);

    public void Dispose() => ps.Dispose();

    [Fact]
    public void TestModuleManifest_OnTheBuiltModule_Passes()
    {
        var result = ps.Invoke("Test-ModuleManifest -Path $path", PowerShellSession.Vars(("path", TestPaths.ModuleManifest)));

        Assert.Empty(result.AllErrors);
        var module = Assert.Single(result.Output);
        Assert.Equal(TestPaths.ModuleVersion, module.Properties["Version"].Value.ToString());
    }

    [Fact]
    public void Manifest_HasRequiredMetadataAndExplicitExports()
    {
        var result = ps.Invoke("& ([scriptblock]::Create([IO.File]::ReadAllText($path)))", PowerShellSession.Vars(("path", TestPaths.ModuleManifest)));
        var data = (Hashtable)Assert.Single(result.Output).BaseObject;

        Assert.Equal("IoTHubMqtt.dll", data["RootModule"]);
        Assert.Equal(TestPaths.ModuleVersion, data["ModuleVersion"]);
        Assert.Equal("7.4", data["PowerShellVersion"]);
        Assert.Equal(["Core"], ((object[])data["CompatiblePSEditions"]!).Cast<string>());
        Assert.True(Guid.TryParse((string)data["GUID"]!, out _));
        var cmdlets = ((object[])data["CmdletsToExport"]!).Cast<string>().ToList();
        Assert.DoesNotContain(cmdlets, c => c.Contains('*', StringComparison.Ordinal));
        Assert.NotEmpty((object[])data["FormatsToProcess"]!);
        var psData = (Hashtable)((Hashtable)data["PrivateData"]!)["PSData"]!;
        foreach (var key in new[] { "Tags", "LicenseUri", "ProjectUri", "ReleaseNotes" })
        {
            Assert.NotNull(psData[key]);
        }
    }

    [Fact]
    public void ImportedModule_ExportsExactlyTheManifestCmdlets()
    {
        var result = ps.Invoke(
            "$m = Import-Module $path -PassThru; $declared = (& ([scriptblock]::Create([IO.File]::ReadAllText($path)))).CmdletsToExport; " +
            "[pscustomobject]@{ Exported = [string[]][Linq.Enumerable]::Order([string[]]$m.ExportedCmdlets.Keys); Declared = [string[]][Linq.Enumerable]::Order([string[]]$declared) }",
            PowerShellSession.Vars(("path", TestPaths.ModuleManifest)));

        Assert.Empty(result.AllErrors);
        var item = Assert.Single(result.Output);
        var exported = (string[])item.Properties["Exported"].Value;
        var declared = (string[])item.Properties["Declared"].Value;
        Assert.NotEmpty(declared);
        Assert.Equal(declared, exported);
    }

    [Fact]
    public void TestModuleManifest_GalleryMetadata_IsFilledIn()
    {
        var result = ps.Invoke("Test-ModuleManifest -Path $path", PowerShellSession.Vars(("path", TestPaths.ModuleManifest)));
        var module = Assert.Single(result.Output);

        Assert.NotEmpty((System.Collections.IEnumerable)module.Properties["Tags"].Value);
        Assert.NotNull(module.Properties["LicenseUri"].Value);
        Assert.NotNull(module.Properties["ProjectUri"].Value);
        Assert.False(string.IsNullOrWhiteSpace((string)module.Properties["ReleaseNotes"].Value));
        Assert.False(string.IsNullOrWhiteSpace((string)module.Properties["Description"].Value));
    }

    [Fact]
    public void ModuleFolder_HasDependenciesOutsideTheRoot()
    {
        Assert.True(File.Exists(Path.Combine(TestPaths.ModuleDirectory, "IoTHubMqtt.dll")));
        Assert.True(File.Exists(Path.Combine(TestPaths.ModuleDirectory, "dependencies", "IoTHubMqtt.Core.dll")));
        Assert.True(File.Exists(Path.Combine(TestPaths.ModuleDirectory, "dependencies", "MQTTnet.dll")));
        Assert.False(File.Exists(Path.Combine(TestPaths.ModuleDirectory, "MQTTnet.dll")));
        Assert.False(File.Exists(Path.Combine(TestPaths.ModuleDirectory, "System.Management.Automation.dll")));
    }
}
