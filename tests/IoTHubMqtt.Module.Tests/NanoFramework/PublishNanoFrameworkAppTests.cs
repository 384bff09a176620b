using System.Management.Automation;
using IoTHubMqtt.Module.Tests.Harness;
using IoTHubMqtt.Tests.Shared;

namespace IoTHubMqtt.Module.Tests.NanoFramework;

public sealed class PublishNanoFrameworkAppTests : IDisposable
{
    private const string Cmdlet = "IoTHubMqtt.Commands.NanoFramework.PublishNanoFrameworkAppCommand";
    private readonly PowerShellSession ps = new();
    private readonly string folder = Directory.CreateTempSubdirectory("nfapp-").FullName;
    private readonly string output;

    public PublishNanoFrameworkAppTests() => output = Path.Combine(folder, "out", "app.bin");

    public void Dispose()
    {
        ps.Dispose();
        Directory.Delete(folder, recursive: true);
    }

    private string Bin()
    {
        var bin = Path.Combine(folder, "bin");
        Directory.CreateDirectory(bin);
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        return bin;
    }

    private static void Put(string dir, string name, byte[] content) => File.WriteAllBytes(Path.Combine(dir, name), content);

    [Fact]
    public void Folder_WritesPaddedImageInDependencyOrder_PassThruDescribesIt()
    {
        var bin = Bin();
        var app = SyntheticPe.Create("IoTHubDevice", references: ["mscorlib", "IoTHubDevice.Logic"], codeBytes: 5);
        var logic = SyntheticPe.Create("IoTHubDevice.Logic", references: ["mscorlib"], codeBytes: 10);
        var corlib = SyntheticPe.Create("mscorlib", codeBytes: 7);
        Put(bin, "IoTHubDevice.pe", app);
        Put(bin, "IoTHubDevice.Logic.pe", logic);
        Put(bin, "mscorlib.pe", corlib);
        Put(bin, "IoTHubDevice.dll", [0x4D, 0x5A]);

        var result = ps.Invoke("Publish-NanoFrameworkApp -Path $bin -OutputPath $out -PassThru -Verbose", PowerShellSession.Vars(("bin", bin), ("out", output)));

        Assert.Empty(result.AllErrors);
        var info = Assert.Single(result.Output);
        var assemblies = (object[])info.Properties["Assemblies"].Value;
        Assert.Equal(["mscorlib", "IoTHubDevice.Logic", "IoTHubDevice"], assemblies.Select(a => (string)PSObject.AsPSObject(a).Properties["Name"].Value));
        Assert.Equal([0, Pad(corlib.Length), Pad(corlib.Length) + Pad(logic.Length)], assemblies.Select(a => (int)PSObject.AsPSObject(a).Properties["Offset"].Value));

        var expected = new List<byte>();
        foreach (var pe in new[] { corlib, logic, app })
        {
            expected.AddRange(pe);
            expected.AddRange(new byte[Pad(pe.Length) - pe.Length]);
        }

        Assert.Equal(expected.ToArray(), File.ReadAllBytes(output));
        Assert.Equal(expected.Count, (int)info.Properties["Size"].Value);
        Assert.Equal(output, (string)info.Properties["OutputPath"].Value);
        Assert.Equal(3, result.Verbose.Count(v => v.Message.StartsWith("0x", StringComparison.Ordinal)));
    }

    private static int Pad(int n) => (n + 3) & ~3;

    [Fact]
    public void PipelineByPropertyName_FullName_Works()
    {
        var bin = Bin();
        Put(bin, "a.pe", SyntheticPe.Create("A"));

        var result = ps.Invoke("[pscustomobject]@{ FullName = $bin } | Publish-NanoFrameworkApp -OutputPath $out", PowerShellSession.Vars(("bin", bin), ("out", output)));

        Assert.Empty(result.AllErrors);
        Assert.Empty(result.Output);
        Assert.True(File.Exists(output));
    }

    [Fact]
    public void PipelineOfPeFiles_BuildsOneImage()
    {
        var bin = Bin();
        Put(bin, "app.pe", SyntheticPe.Create("App", references: ["mscorlib"]));
        Put(bin, "mscorlib.pe", SyntheticPe.Create("mscorlib"));
        Put(bin, "unused.pe", SyntheticPe.Create("Unused"));

        var result = ps.Invoke(
            "[pscustomobject]@{ FullName = [IO.Path]::Combine($bin, 'app.pe') }, [pscustomobject]@{ FullName = [IO.Path]::Combine($bin, 'mscorlib.pe') } | Publish-NanoFrameworkApp -OutputPath $out -PassThru",
            PowerShellSession.Vars(("bin", bin), ("out", output)));

        Assert.Empty(result.AllErrors);
        var assemblies = (object[])Assert.Single(result.Output).Properties["Assemblies"].Value;
        Assert.Equal(["mscorlib", "App"], assemblies.Select(a => (string)PSObject.AsPSObject(a).Properties["Name"].Value));
    }

    [Fact]
    public void FileThatIsNotPe_InAList_IsRefused()
    {
        var bin = Bin();
        Put(bin, "app.pe", SyntheticPe.Create("App"));
        Put(bin, "app.dll", [0x4D, 0x5A]);

        var result = ps.Invoke("Publish-NanoFrameworkApp -Path ([IO.Path]::Combine($bin, 'app.pe')), ([IO.Path]::Combine($bin, 'app.dll')) -OutputPath $out",
            PowerShellSession.Vars(("bin", bin), ("out", output)));

        var error = Assert.Single(result.AllErrors);
        Assert.Equal("NanoFrameworkNotPeFile," + Cmdlet, error.FullyQualifiedErrorId);
        Assert.Equal("app.dll", error.TargetObject);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void FolderAndFilesTogether_Refused()
    {
        var bin = Bin();
        Put(bin, "app.pe", SyntheticPe.Create("App"));

        var result = ps.Invoke("Publish-NanoFrameworkApp -Path $bin, ([IO.Path]::Combine($bin, 'app.pe')) -OutputPath $out", PowerShellSession.Vars(("bin", bin), ("out", output)));

        Assert.Equal("NanoFrameworkMixedInput," + Cmdlet, Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void CorruptPe_TerminatingErrorNamesFile_WritesNothing()
    {
        var bin = Bin();
        var pe = SyntheticPe.Create("App", codeBytes: 20);
        pe[^3] ^= 0xFF;
        Put(bin, "App.pe", pe);

        var result = ps.Invoke("Publish-NanoFrameworkApp -Path $bin -OutputPath $out", PowerShellSession.Vars(("bin", bin), ("out", output)));

        var error = Assert.Single(result.AllErrors);
        Assert.Equal("NanoFrameworkPeAssemblyCorrupt," + Cmdlet, error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidData, error.CategoryInfo.Category);
        Assert.Contains("App.pe", error.ToString(), StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void EmptyFolder_NoPeFiles_ObjectNotFound()
    {
        var bin = Bin();

        var result = ps.Invoke("Publish-NanoFrameworkApp -Path $bin -OutputPath $out", PowerShellSession.Vars(("bin", bin), ("out", output)));

        var error = Assert.Single(result.AllErrors);
        Assert.Equal("NanoFrameworkNoPeFiles," + Cmdlet, error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, error.CategoryInfo.Category);
    }

    [Fact]
    public void LargerThanPartitionSize_Refused()
    {
        var bin = Bin();
        Put(bin, "a.pe", SyntheticPe.Create("A", codeBytes: 2000));

        var result = ps.Invoke("Publish-NanoFrameworkApp -Path $bin -OutputPath $out -PartitionSize 2048", PowerShellSession.Vars(("bin", bin), ("out", output)));

        Assert.Equal("NanoFrameworkImageTooLarge," + Cmdlet, Assert.Single(result.AllErrors).FullyQualifiedErrorId);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void WhatIf_WritesNothing()
    {
        var bin = Bin();
        Put(bin, "a.pe", SyntheticPe.Create("A"));

        var result = ps.Invoke("Publish-NanoFrameworkApp -Path $bin -OutputPath $out -WhatIf", PowerShellSession.Vars(("bin", bin), ("out", output)));

        Assert.Empty(result.AllErrors);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void MissingReference_Warns()
    {
        var bin = Bin();
        Put(bin, "app.pe", SyntheticPe.Create("App", references: ["mscorlib", "nanoFramework.M2Mqtt"]));
        Put(bin, "mscorlib.pe", SyntheticPe.Create("mscorlib"));

        var result = ps.Invoke("Publish-NanoFrameworkApp -Path $bin -OutputPath $out", PowerShellSession.Vars(("bin", bin), ("out", output)));

        Assert.Empty(result.AllErrors);
        Assert.Contains(result.Warnings, w => w.Message.Contains("'nanoFramework.M2Mqtt'", StringComparison.Ordinal));
        Assert.True(File.Exists(output));
    }

    [Fact]
    public void DefaultView_ListsAssembliesWithOffsets()
    {
        var bin = Bin();
        Put(bin, "mscorlib.pe", SyntheticPe.Create("mscorlib", new Version(1, 17, 11, 0), codeBytes: 3));
        Put(bin, "app.pe", SyntheticPe.Create("MyApp", new Version(1, 0, 0, 0), references: ["mscorlib"]));

        var text = ps.Render("Publish-NanoFrameworkApp -Path $bin -OutputPath $out -PassThru", PowerShellSession.Vars(("bin", bin), ("out", output)));

        Assert.Contains("mscorlib 1.17.11.0 @0x000000", text, StringComparison.Ordinal);
        Assert.Contains("MyApp 1.0.0.0 @0x", text, StringComparison.Ordinal);
    }
}
