using FsCheck;
using FsCheck.Fluent;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Core.NanoFramework;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

public sealed class PartitionTableTests
{
    [Fact]
    public void Parse_NanoTable_FindsDeploymentBySubtype()
    {
        var table = PartitionTable.Parse(TestImages.NanoPartitionTable(0x1C0000, 0x50000));
        Assert.True(table.HasMd5);
        Assert.Equal(5, table.Entries.Count);
        Assert.Equal(0x1C0000u, table.DeploymentPartition.Offset);
        Assert.Equal("deploy", table.DeploymentPartition.Name);
        Assert.Equal(0x10000u, table.AppPartition!.Offset);
    }

    [Fact]
    public void Parse_Md5Tampered_Invalid()
    {
        var bytes = TestImages.NanoPartitionTable();
        bytes[4] ^= 1;
        Assert.Equal("PartitionTableInvalid", Assert.Throws<IoTHubMqttException>(() => PartitionTable.Parse(bytes)).ErrorId);
    }

    [Fact]
    public void Parse_NoDeploymentPartition_NotFoundError()
    {
        var table = PartitionTable.Parse(PartitionTable.Build([new PartitionEntry("factory", 0, 0, 0x10000, 0x100000, 0)]));
        Assert.Equal("DeploymentPartitionNotFound", Assert.Throws<IoTHubMqttException>(() => table.DeploymentPartition).ErrorId);
    }

    [Fact]
    public void Parse_ErasedFlash_ClearError()
    {
        var erased = Enumerable.Repeat((byte)0xFF, 0xC00).ToArray();
        Assert.Contains("erased", Assert.Throws<IoTHubMqttException>(() => PartitionTable.Parse(erased)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_RandomBytes_ParsesOrInvalidDataNeverCrashes()
    {
        Prop.ForAll(Arb.From(ArbMap.Default.GeneratorFor<byte[]>()), bytes => Outcome(bytes)).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Parse_MutatedValidTable_ParsesOrInvalidDataNeverCrashes()
    {
        var valid = TestImages.NanoPartitionTable();
        var mutations = Gen.Choose(0, 0xC00 - 1).SelectMany(i => Gen.Choose(0, 255).Select(v => (i, (byte)v))).ListOf();
        var lengths = Gen.Choose(0, 0xC00);
        Prop.ForAll(Arb.From(mutations), Arb.From(lengths), (changes, length) =>
        {
            var copy = valid.ToArray();
            foreach (var (i, v) in changes)
            {
                copy[i] = v;
            }

            return Outcome(copy.AsSpan(0, length).ToArray());
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Build_AnyEntries_RoundTrips()
    {
        var names = Gen.Elements("nvs", "factory", "deploy", "config", "ota_0", "x");
        var entries = Gen.Choose(1, 40).SelectMany(count => names.Zip(Gen.Choose(0, 255)).ListOf(count)).Select(list =>
            list.Select((e, i) => new PartitionEntry(e.Item1, (byte)(i % 2), (byte)e.Item2, (uint)(0x10000 + (i * 0x10000)), 0x8000, 0)).ToList());
        Prop.ForAll(Arb.From(entries), list => PartitionTable.Parse(PartitionTable.Build(list)).Entries.SequenceEqual(list)).QuickCheckThrowOnFailure();
    }

    private static bool Outcome(byte[] bytes)
    {
        try
        {
            var table = PartitionTable.Parse(bytes);
            return table.Entries.Count > 0;
        }
        catch (IoTHubMqttException ex)
        {
            return ex.ErrorId == "PartitionTableInvalid" && ex.Kind == IoTHubErrorKind.InvalidData;
        }
    }
}

public sealed class FirmwarePackageTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Package_ThenDeploymentImage_WrittenWherePartitionTableSays()
    {
        var root = Path.Combine(Path.GetTempPath(), "esp32pkg-" + Guid.NewGuid().ToString("N"));
        try
        {
            var package = FirmwarePackage.Load(TestImages.Package(root, 0, deploymentOffset: 0x1D0000));
            await using var server = new SimulatorServer();
            await using var flasher = await FlasherTests.ConnectAsync(server);

            var written = await flasher.WriteAsync(package.Regions(flasher.ChipInfo), Token);
            Assert.Equal(["bootloader", "partition-table", "nanoCLR"], written.Select(r => r.Name));
            Assert.Equal([0x1000u, 0x8000u, 0x10000u], written.Select(r => r.Offset));

            // The deployment partition is found by reading the table back from the board, not by a fixed address.
            var table = PartitionTable.Parse(await flasher.ReadFlashAsync(PartitionTable.DefaultOffset, PartitionTable.MaxLength, Token));
            server.Simulator.Flash.AsSpan(0x1D0000 + 0x100, 16).Clear(); // stale bytes from an older app
            var deployment = TestImages.FirmwareLike(10 * 1024, 30);
            var result = Assert.Single(await flasher.WriteAsync([FirmwarePackage.DeploymentRegion(table, deployment)], Token));

            Assert.Equal(0x1D0000u, result.Offset);
            Assert.Equal(deployment, server.Simulator.Flash.AsSpan(0x1D0000, deployment.Length).ToArray());
            Assert.All(server.Simulator.Flash.AsSpan(0x1D0000 + deployment.Length, 0x40000 - deployment.Length).ToArray(), b => Assert.Equal(0xFF, b));
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [Fact]
    public async Task WritePartition_ByName_UsesBoardTable_UnknownNameIsNotFound()
    {
        await using var server = new SimulatorServer();
        TestImages.NanoPartitionTable(0x1C0000, 0x40000).CopyTo(server.Simulator.Flash, 0x8000);
        await using var flasher = await FlasherTests.ConnectAsync(server);
        var config = System.Text.Encoding.UTF8.GetBytes("{\"wifi\":\"lab\"}");

        var result = await flasher.WritePartitionAsync(t => t.Find("config"), config, "config", Token);

        Assert.Equal(0x200000u, result.Offset);
        Assert.Equal(0x10000, result.Length);
        Assert.Equal(config, server.Simulator.Flash.AsSpan(0x200000, config.Length).ToArray());
        var missing = await Assert.ThrowsAsync<IoTHubMqttException>(() => flasher.WritePartitionAsync(t => t.Find("spiffs"), config, "spiffs", Token));
        Assert.Equal("PartitionNotFound", missing.ErrorId);
    }

    [Fact]
    public void DeploymentImage_LargerThanPartition_ImageTooLarge()
    {
        var table = PartitionTable.Parse(TestImages.NanoPartitionTable(0x1E0000, 0x10000));
        var ex = Assert.Throws<IoTHubMqttException>(() => FirmwarePackage.DeploymentRegion(table, new byte[0x10001]));
        Assert.Equal("Esp32ImageTooLarge", ex.ErrorId);
        Assert.Contains("'deploy' partition", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Package_MissingFile_Incomplete()
    {
        var root = Path.Combine(Path.GetTempPath(), "esp32pkg-" + Guid.NewGuid().ToString("N"));
        try
        {
            TestImages.Package(root, 0);
            File.Delete(Path.Combine(root, "nanoCLR.bin"));
            Assert.Equal("FirmwarePackageIncomplete", Assert.Throws<IoTHubMqttException>(() => FirmwarePackage.Load(root)).ErrorId);
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }
}
