using System.Buffers.Binary;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.NanoFramework;
using IoTHubMqtt.Tests.Shared;

namespace IoTHubMqtt.Core.Tests.NanoFramework;

public sealed class DeploymentImageTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("nfimage-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private void Write(string file, byte[] content) => File.WriteAllBytes(Path.Combine(folder, file), content);

    [Fact]
    public void Header_SyntheticPe_ReadsNameVersionSizeReferences()
    {
        var pe = SyntheticPe.Create("IoTHubDevice", new Version(2, 0, 1, 7), ["mscorlib", "nanoFramework.M2Mqtt"], codeBytes: 50);

        var header = NanoAssemblyHeader.Parse(pe, "fallback");

        Assert.Equal("IoTHubDevice", header.Name);
        Assert.Equal(new Version(2, 0, 1, 7), header.Version);
        Assert.Equal(pe.Length, header.TotalSize);
        Assert.Equal(["mscorlib", "nanoFramework.M2Mqtt"], header.References);
        Assert.Equal(0xC0FFEEu, header.NativeMethodsChecksum);
        Assert.Equal(SyntheticPe.Crc(pe.AsSpan(SyntheticPe.HeaderSize)), header.AssemblyCrc);
    }

    [Fact]
    public void Header_WellKnownNameIndex_FallsBackToFileName()
    {
        var header = NanoAssemblyHeader.Parse(SyntheticPe.Create("mscorlib", useWellKnownName: true), "mscorlib");

        Assert.Equal("mscorlib", header.Name);
    }

    [Fact]
    public void Build_PadsEachToFourBytes_MscorlibFirst_DependenciesBeforeDependents()
    {
        Write("IoTHubDevice.pe", SyntheticPe.Create("IoTHubDevice", references: ["mscorlib", "IoTHubDevice.Logic", "nanoFramework.M2Mqtt"], codeBytes: 13));
        Write("IoTHubDevice.Logic.pe", SyntheticPe.Create("IoTHubDevice.Logic", references: ["mscorlib", "nanoFramework.System.Text"], codeBytes: 22));
        Write("nanoFramework.M2Mqtt.pe", SyntheticPe.Create("nanoFramework.M2Mqtt", references: ["mscorlib", "System.Net"], codeBytes: 5));
        Write("nanoFramework.System.Text.pe", SyntheticPe.Create("nanoFramework.System.Text", references: ["mscorlib"], codeBytes: 8));
        Write("System.Net.pe", SyntheticPe.Create("System.Net", references: ["mscorlib"], codeBytes: 3));
        Write("mscorlib.pe", SyntheticPe.Create("mscorlib", codeBytes: 31));
        Write("IoTHubDevice.dll", [1, 2, 3]);
        Write("IoTHubDevice.pdbx", [4, 5]);

        var image = DeploymentImage.FromPath(folder);

        var names = image.Assemblies.Select(a => a.Name).ToList();
        Assert.Equal(["mscorlib", "nanoFramework.System.Text", "IoTHubDevice.Logic", "System.Net", "nanoFramework.M2Mqtt", "IoTHubDevice"], names);
        foreach (var a in image.Assemblies)
        {
            Assert.All(a.References.Where(names.Contains), r => Assert.True(names.IndexOf(r) < names.IndexOf(a.Name), $"{r} before {a.Name}"));
        }

        var offset = 0;
        foreach (var a in image.Assemblies)
        {
            var file = File.ReadAllBytes(Path.Combine(folder, a.FileName));
            Assert.Equal(offset, a.Offset);
            Assert.Equal(0, a.Offset % 4);
            Assert.Equal(file.Length, a.Size);
            Assert.Equal((file.Length + 3) / 4 * 4, a.PaddedSize);
            Assert.Equal(file, image.Content.Slice(a.Offset, a.Size).ToArray());
            Assert.All(image.Content.Slice(a.Offset + a.Size, a.PaddedSize - a.Size).ToArray(), b => Assert.Equal(0, b));
            offset += a.PaddedSize;
        }

        Assert.Equal(offset, image.Length);
        Assert.Empty(image.MissingReferences);
    }

    [Fact]
    public void Build_WalkLikeTheRuntime_FindsEveryAssembly()
    {
        Write("a.pe", SyntheticPe.Create("A", codeBytes: 1));
        Write("b.pe", SyntheticPe.Create("B", codeBytes: 2));
        Write("c.pe", SyntheticPe.Create("C", codeBytes: 3));
        var image = DeploymentImage.FromPath(folder).Content.ToArray();

        // The runtime reads a header, skips TotalSize rounded up to 4, and stops at erased flash.
        var flash = image.Concat(Enumerable.Repeat((byte)0xFF, 256)).ToArray();
        var found = new List<string>();
        var position = 0;
        while (flash[position] == (byte)'N')
        {
            var header = NanoAssemblyHeader.Parse(flash.AsSpan(position, (int)BinaryPrimitives.ReadUInt32LittleEndian(flash.AsSpan(position + 36 + (18 * 4)))), "?");
            found.Add(header.Name);
            position += (header.TotalSize + 3) & ~3;
        }

        Assert.Equal(["A", "B", "C"], found);
        Assert.Equal(image.Length, position);
    }

    [Fact]
    public void Build_SameInputs_SameBytes()
    {
        Write("x.pe", SyntheticPe.Create("X", references: ["mscorlib"]));
        Write("mscorlib.pe", SyntheticPe.Create("mscorlib"));

        Assert.Equal(DeploymentImage.FromPath(folder).Content.ToArray(), DeploymentImage.FromPath(folder).Content.ToArray());
    }

    [Fact]
    public void Build_MissingReference_IsListed()
    {
        Write("app.pe", SyntheticPe.Create("App", references: ["mscorlib", "System.Net"]));
        Write("mscorlib.pe", SyntheticPe.Create("mscorlib"));

        Assert.Equal(["System.Net"], DeploymentImage.FromPath(folder).MissingReferences);
    }

    private IoTHubMqttException Fails(Action action) => Assert.Throws<IoTHubMqttException>(action);

    [Fact]
    public void EmptyFolder_NoPeFiles()
    {
        Write("readme.txt", [1]);

        var ex = Fails(() => DeploymentImage.FromPath(folder));

        Assert.Equal("NanoFrameworkNoPeFiles", ex.ErrorId);
        Assert.Equal(IoTHubErrorKind.NotFound, ex.Kind);
    }

    [Fact]
    public void NonPeFileGiven_NotPeFile()
    {
        var path = Path.Combine(folder, "app.dll");
        File.WriteAllBytes(path, SyntheticPe.Create("App"));

        Assert.Equal("NanoFrameworkNotPeFile", Fails(() => DeploymentImage.FromPath(path)).ErrorId);
    }

    [Fact]
    public void MissingPath_PathNotFound() =>
        Assert.Equal("NanoFrameworkPathNotFound", Fails(() => DeploymentImage.FromPath(Path.Combine(folder, "nope"))).ErrorId);

    [Theory]
    [InlineData("marker")]
    [InlineData("v1")]
    [InlineData("headerByte")]
    [InlineData("codeByte")]
    [InlineData("truncated")]
    [InlineData("short")]
    public void CorruptPe_HasStableErrorId(string corruption)
    {
        var pe = SyntheticPe.Create("App", codeBytes: 40);
        string expected;
        switch (corruption)
        {
            case "marker":
                pe[0] = (byte)'M';
                expected = "NanoFrameworkPeBadMarker";
                break;
            case "v1":
                pe[5] = (byte)'1';
                expected = "NanoFrameworkPeOutdated";
                break;
            case "headerByte":
                pe[26] ^= 1;
                expected = "NanoFrameworkPeHeaderCorrupt";
                break;
            case "codeByte":
                pe[^1] ^= 0x80;
                expected = "NanoFrameworkPeAssemblyCorrupt";
                break;
            case "truncated":
                pe = pe[..^4];
                expected = "NanoFrameworkPeSizeMismatch";
                break;
            default:
                pe = pe[..100];
                expected = "NanoFrameworkPeTruncated";
                break;
        }

        Write("app.pe", pe);

        var ex = Fails(() => DeploymentImage.FromPath(folder));
        Assert.Equal(expected, ex.ErrorId);
        Assert.Equal(IoTHubErrorKind.InvalidData, ex.Kind);
        Assert.Equal("app.pe", ex.Target);
    }

    [Fact]
    public void DuplicateAssemblyName_Refused()
    {
        Write("one.pe", SyntheticPe.Create("Same"));
        Write("two.pe", SyntheticPe.Create("Same", codeBytes: 9));

        Assert.Equal("NanoFrameworkDuplicateAssembly", Fails(() => DeploymentImage.FromPath(folder)).ErrorId);
    }

    [Fact]
    public void LargerThanPartition_TooLarge()
    {
        Write("app.pe", SyntheticPe.Create("App", codeBytes: 1000));

        var ex = Fails(() => DeploymentImage.FromPath(folder, maximumSize: 1024));

        Assert.Equal("NanoFrameworkImageTooLarge", ex.ErrorId);
        Assert.Contains("1024", ex.Message, StringComparison.Ordinal);
        Assert.Equal(DeploymentImage.FromPath(folder).Length, DeploymentImage.FromPath(folder, maximumSize: DeploymentImage.FromPath(folder).Length).Length);
    }

    [Fact]
    public void NanoCrc32_MatchesBitwiseReference()
    {
        var data = new byte[300];
        new Random(3).NextBytes(data);

        Assert.Equal(SyntheticPe.Crc(data), NanoCrc32.Compute(data));
        Assert.Equal(0u, NanoCrc32.Compute([]));
    }
}
