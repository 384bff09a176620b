using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Core.NanoFramework;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>
/// Broken firmware, as a new user or an attacker would hand it over: every file is refused before a port is opened, the
/// simulated board sees no command and its flash stays as it was; memory stays bounded.
/// </summary>
public sealed class FlashSafetyTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "esp32-safety-" + Guid.NewGuid().ToString("N"));

    public FlashSafetyTests() => Directory.CreateDirectory(root);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(root, true);

    private string Write(string name, byte[] data)
    {
        var path = Path.Combine(root, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, data);
        return path;
    }

    private static readonly byte[] Html404 = Encoding.ASCII.GetBytes("<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>Not Found</body></html>");
    private static readonly byte[] Elf = [0x7F, (byte)'E', (byte)'L', (byte)'F', 1, 1, 1, 0, .. new byte[200]];

    public static TheoryData<string, byte[]> NotImages() => new()
    {
        { "random bytes", TestImages.FirmwareLike(4096, 70).Select((b, i) => i == 0 ? (byte)0x12 : b).ToArray() },
        { "two bytes", [0xE9, 0x01] },
        { "an HTML 404 page", Html404 },
        { "an ELF file", Elf },
    };

    /// <summary>A package folder with one file replaced.</summary>
    private string PackageWith(string file, byte[] content)
    {
        var folder = TestImages.Package(Path.Combine(root, "pkg-" + Guid.NewGuid().ToString("N")), 0);
        File.WriteAllBytes(Path.Combine(folder, file), content);
        return folder;
    }

    /// <summary>Runs the whole install path against a simulator: the plan (files) first, then the board.</summary>
    private static async Task<IoTHubMqttException> RefusedAsync(Esp32InstallRequest request, SimulatorServer server)
    {
        var before = server.Simulator.Flash.ToArray();
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(async () =>
        {
            var plan = Esp32InstallPlan.Create(request);
            await Esp32Installer.InstallAsync(server.Url, plan, new Esp32FlasherOptions(), Token);
        });
        Assert.Equal(0, server.Simulator.CountOf((byte)Esp32Opcode.Sync)); // refused before the port was opened
        Assert.Equal(before, server.Simulator.Flash);
        return error;
    }

    [Theory]
    [MemberData(nameof(NotImages))]
    public async Task PackageBootloaderOrNanoClrNotAnImage_RefusedNamingTheFile(string what, byte[] content)
    {
        await using var server = new SimulatorServer();
        foreach (var file in new[] { "bootloader.bin", "nanoCLR.bin" })
        {
            var error = await RefusedAsync(new Esp32InstallRequest { PackagePath = PackageWith(file, content) }, server);

            Assert.True(error.ErrorId is "Esp32ImageInvalid", $"{what}: {error.ErrorId}");
            Assert.Contains(file, error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void NotAnImage_TheErrorSaysWhatTheFileLooksLike()
    {
        Assert.Contains("HTML page", Assert.Throws<IoTHubMqttException>(() => Esp32ImageValidator.Validate(Html404, "x.bin")).Message, StringComparison.Ordinal);
        Assert.Contains("ELF file", Assert.Throws<IoTHubMqttException>(() => Esp32ImageValidator.Validate(Elf, "x.bin")).Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(NotImages))]
    public async Task ImageAtOffsetNotAnImage_Refused_RawWritesIt(string what, byte[] content)
    {
        await using var server = new SimulatorServer();
        var path = Write("image.bin", content);

        var error = await RefusedAsync(new Esp32InstallRequest { Images = [(0x10000, path)] }, server);
        Assert.Equal("Esp32ImageInvalid", error.ErrorId);
        Assert.Contains("-Raw", error.RecommendedAction, StringComparison.Ordinal);

        var results = await Esp32Installer.InstallAsync(server.Url, Esp32InstallPlan.Create(new Esp32InstallRequest { Images = [(0x10000, path)], Raw = true }), new Esp32FlasherOptions(), Token);
        Assert.Equal(Esp32RegionStatus.Written, Assert.Single(results).Status);
        Assert.Equal(content, server.Simulator.Flash.AsSpan(0x10000, content.Length).ToArray());
        _ = what;
    }

    [Fact]
    public void ImageChecks_SegmentsChecksumHashAndChipId()
    {
        var good = TestImages.App(5, 1000, hashAppended: true);
        Assert.Equal(5, Esp32ImageValidator.Validate(good, "app.bin").ChipId);

        byte[] With(Action<byte[]> change)
        {
            var copy = good.ToArray();
            change(copy);
            return copy;
        }

        Assert.Equal("Esp32ImageChecksumMismatch", Assert.Throws<IoTHubMqttException>(() => Esp32ImageValidator.Validate(With(c => c[100] ^= 1), "app.bin")).ErrorId);
        Assert.Equal("Esp32ImageChecksumMismatch", Assert.Throws<IoTHubMqttException>(() => Esp32ImageValidator.Validate(With(c => c[3] ^= 0x10), "app.bin")).ErrorId);
        Assert.Contains("0 segments", Assert.Throws<IoTHubMqttException>(() => Esp32ImageValidator.Validate(With(c => c[1] = 0), "app.bin")).Message, StringComparison.Ordinal);
        Assert.Contains("17 segments", Assert.Throws<IoTHubMqttException>(() => Esp32ImageValidator.Validate(With(c => c[1] = 17), "app.bin")).Message, StringComparison.Ordinal);
        Assert.Contains("past the end", Assert.Throws<IoTHubMqttException>(() => Esp32ImageValidator.Validate(With(c => BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(28), 1_000_000)), "app.bin")).Message, StringComparison.Ordinal);
        Assert.Contains("chip id 77", Assert.Throws<IoTHubMqttException>(() => Esp32ImageValidator.Validate(With(c => c[12] = 77), "app.bin")).Message, StringComparison.Ordinal);
        Assert.Contains("truncated", Assert.Throws<IoTHubMqttException>(() => Esp32ImageValidator.Validate(good[..1035], "app.bin")).Message, StringComparison.Ordinal);
        Assert.Equal("Esp32EmptyImage", Assert.Throws<IoTHubMqttException>(() => Esp32ImageValidator.Validate([], "app.bin")).ErrorId);
    }

    [Fact]
    public async Task ImageForAnotherChipThanMinusChip_RefusedBeforeThePortOpens()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32C3 });
        var path = Write("app.bin", TestImages.App(0, 4096));

        var error = await RefusedAsync(new Esp32InstallRequest { Images = [(0x10000, path)], Chip = Esp32Chip.Esp32C3 }, server);

        Assert.Equal("Esp32ImageChipMismatch", error.ErrorId);
    }

    [Fact]
    public async Task ZipEntryWithBadCrc_RefusedAsCorrupt()
    {
        await using var server = new SimulatorServer();
        var folder = TestImages.Package(Path.Combine(root, "crc"), 0);
        var zipPath = Path.Combine(root, "crc.zip");
        using (var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create))
        {
            foreach (var file in Directory.GetFiles(folder))
            {
                zip.CreateEntryFromFile(file, Path.GetFileName(file), CompressionLevel.NoCompression);
            }
        }

        // One byte of nanoCLR changed inside the zip (stored, so the bytes are there as is); the directory's CRC stays.
        var bytes = File.ReadAllBytes(zipPath);
        var nanoClr = File.ReadAllBytes(Path.Combine(folder, "nanoCLR.bin"));
        var at = bytes.AsSpan().IndexOf(nanoClr.AsSpan(0, 64));
        Assert.True(at > 0);
        bytes[at + 1000] ^= 0x01;
        File.WriteAllBytes(zipPath, bytes);

        var error = await RefusedAsync(new Esp32InstallRequest { PackagePath = zipPath }, server);

        Assert.Equal("FirmwarePackageCorrupt", error.ErrorId);
        Assert.Contains("nanoCLR.bin", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ZipBomb_FailsFast_WithBoundedMemory()
    {
        // A zip of a few hundred KB that inflates to 300 MB, made here: an entry named like the runtime, all zeros.
        var zipPath = Path.Combine(root, "bomb.zip");
        using (var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create))
        {
            using var entry = zip.CreateEntry("nanoCLR.bin", CompressionLevel.SmallestSize).Open();
            var zeros = new byte[1024 * 1024];
            for (var i = 0; i < 300; i++)
            {
                entry.Write(zeros);
            }
        }

        Assert.True(new FileInfo(zipPath).Length < 1024 * 1024, "the bomb is small on disk");
        var allocated = GC.GetAllocatedBytesForCurrentThread();

        var error = Assert.Throws<IoTHubMqttException>(() => FirmwarePackage.Load(zipPath));

        var grown = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Assert.Equal("FirmwarePackageTooLarge", error.ErrorId);
        Assert.True(grown < 40L * 1024 * 1024, $"loading allocated {grown / (1024 * 1024)} MB; the cap is {FirmwarePackage.DefaultSizeLimit / (1024 * 1024)} MB");
    }

    [Fact]
    public void ZipBomb_HidingItsSize_StoppedAtTheCapWhileInflating()
    {
        // The local and central headers claim 1 KB; the stream inflates to 64 MB. Only the streaming cap catches it.
        var zipPath = Path.Combine(root, "liar.zip");
        using (var zip = ZipFile.Open(zipPath, ZipArchiveMode.Create))
        {
            using var entry = zip.CreateEntry("nanoCLR.bin", CompressionLevel.SmallestSize).Open();
            entry.Write(new byte[64 * 1024 * 1024]);
        }

        var bytes = File.ReadAllBytes(zipPath);
        PatchUncompressedSizes(bytes, 1024);
        File.WriteAllBytes(zipPath, bytes);
        var allocated = GC.GetAllocatedBytesForCurrentThread();

        var error = Assert.Throws<IoTHubMqttException>(() => FirmwarePackage.Load(zipPath, sizeLimit: 4 * 1024 * 1024));

        Assert.True(error.ErrorId is "FirmwarePackageTooLarge" or "FirmwarePackageCorrupt", error.ErrorId);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocated < 40L * 1024 * 1024);
    }

    // Sets the uncompressed size in every local header (PK\x03\x04, offset 22) and central directory entry (PK\x01\x02, offset 24).
    private static void PatchUncompressedSizes(byte[] zip, uint size)
    {
        for (var i = 0; i + 46 < zip.Length; i++)
        {
            if (zip.AsSpan(i, 4).SequenceEqual("PK\x03\x04"u8))
            {
                BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(i + 22), size);
            }
            else if (zip.AsSpan(i, 4).SequenceEqual("PK\x01\x02"u8))
            {
                BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(i + 24), size);
            }
        }
    }

    public static TheoryData<string, byte[]> BadTables()
    {
        var longTable = TestImages.NanoPartitionTable().Concat(Enumerable.Repeat((byte)0x42, 0x400)).ToArray();
        var misalignedApp = PartitionTable.Build([new PartitionEntry("factory", 0, 0, 0x18000, 0x100000, 0)]);
        var misalignedData = PartitionTable.Build([new PartitionEntry("nvs", 1, 2, 0x9800, 0x6000, 0)]);
        var partialSector = PartitionTable.Build([new PartitionEntry("nvs", 1, 2, 0x9000, 0x6100, 0)]);
        var overTable = PartitionTable.Build([new PartitionEntry("nvs", 1, 2, 0x8000, 0x6000, 0)]);
        var overlap = PartitionTable.Build([new PartitionEntry("a", 1, 2, 0x9000, 0x6000, 0), new PartitionEntry("b", 1, 2, 0xE000, 0x2000, 0)]);
        var nameE9 = PartitionTable.Build([new PartitionEntry("nvs", 1, 2, 0x9000, 0x6000, 0)]);
        nameE9[12] = 0xE9;
        return new()
        {
            { "larger than 0xC00", longTable },
            { "app not on 64 KiB", misalignedApp },
            { "data not on 4 KiB", misalignedData },
            { "size not whole sectors", partialSector },
            { "over the table itself", overTable },
            { "overlapping partitions", overlap },
            { "name byte 0xE9", nameE9 },
        };
    }

    [Theory]
    [MemberData(nameof(BadTables))]
    public async Task PartitionTable_BadAsEspIdfSeesIt_Refused(string what, byte[] table)
    {
        await using var server = new SimulatorServer();
        var path = Write("partitions.bin", table);

        var error = await RefusedAsync(new Esp32InstallRequest { Images = [(0x8000, path)] }, server);

        Assert.True(error.ErrorId == "PartitionTableInvalid", $"{what}: {error.ErrorId} {error.Message}");
        var package = await RefusedAsync(new Esp32InstallRequest { PackagePath = PackageWith("partitions_4mb.bin", table) }, server);
        Assert.Equal("PartitionTableInvalid", package.ErrorId);
    }

    [Fact]
    public async Task PartitionTable_BeyondTheFlash_RefusedOnceTheFlashSizeIsKnown()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { FlashSize = 2 * 1024 * 1024 });
        var path = Write("partitions.bin", TestImages.NanoPartitionTable()); // runs to 0x230000

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => Esp32Installer.InstallAsync(server.Url, Esp32InstallPlan.Create(new Esp32InstallRequest { Images = [(0x8000, path)] }), new Esp32FlasherOptions(), Token));

        Assert.Equal("PartitionTableInvalid", error.ErrorId);
        Assert.Contains("beyond the 2MB flash", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, server.Simulator.CountOf((byte)Esp32Opcode.FlashDeflBegin));
        Assert.Equal("PartitionTableInvalid", Assert.Throws<IoTHubMqttException>(() => Esp32InstallPlan.Create(new Esp32InstallRequest { Images = [(0x8000, path)], FlashSize = 2 * 1024 * 1024 })).ErrorId);
    }

    [Theory]
    [InlineData(0x10800u)]
    [InlineData(0x1001u)]
    public async Task ImageOffsetNotOnASector_Refused(uint offset)
    {
        await using var server = new SimulatorServer();
        var path = Write("app.bin", TestImages.App(0, 4096));

        Assert.Equal("Esp32RegionNotAligned", (await RefusedAsync(new Esp32InstallRequest { Images = [(offset, path)] }, server)).ErrorId);
        Assert.Equal("Esp32RegionNotAligned", (await RefusedAsync(new Esp32InstallRequest { Images = [(offset, path)], Raw = true }, server)).ErrorId);
    }

    [Fact]
    public async Task EmptyFiles_Refused_TheDeploymentPartitionIsNotErased()
    {
        await using var server = new SimulatorServer();
        TestImages.NanoPartitionTable(0x1C0000, 0x40000).CopyTo(server.Simulator.Flash, 0x8000);
        server.Simulator.Flash.AsSpan(0x1C0000, 16).Fill(0x42); // the app already deployed
        var empty = Write("empty.bin", []);

        Assert.Equal("Esp32EmptyImage", (await RefusedAsync(new Esp32InstallRequest { DeploymentImagePath = empty }, server)).ErrorId);
        Assert.Equal("Esp32EmptyImage", (await RefusedAsync(new Esp32InstallRequest { Images = [(0x10000, empty)], Raw = true }, server)).ErrorId);
        Assert.Equal("Esp32EmptyImage", (await RefusedAsync(new Esp32InstallRequest { Images = [(0x10000, empty)] }, server)).ErrorId);
    }

    [Fact]
    public async Task DeploymentImageNotAssemblies_RefusedBeforeThePortOpens()
    {
        await using var server = new SimulatorServer();
        var junk = Write("app.bin", TestImages.FirmwareLike(3000, 71));

        var error = await RefusedAsync(new Esp32InstallRequest { DeploymentImagePath = junk }, server);

        Assert.Equal("NanoFrameworkDeploymentImageInvalid", error.ErrorId);
        Assert.Contains("app.bin", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ValidPackage_PlanAndInstall_WritesAndVerifiesEveryRegion()
    {
        await using var server = new SimulatorServer();
        var plan = Esp32InstallPlan.Create(new Esp32InstallRequest { PackagePath = TestImages.Package(Path.Combine(root, "ok"), 0) });

        Assert.Contains("partition-table @ 0x8000", plan.Describe(), StringComparison.Ordinal);
        Assert.Equal(0, server.Simulator.CountOf((byte)Esp32Opcode.Sync)); // planning never touches a board

        var results = await Esp32Installer.InstallAsync(server.Url, plan, new Esp32FlasherOptions(), Token);
        Assert.Equal(["bootloader", "partition-table", "nanoCLR"], results.Select(r => r.Name));
        Assert.All(results, r => Assert.True(r.Verified));
    }
}
