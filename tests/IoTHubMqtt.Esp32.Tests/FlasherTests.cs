using System.Security.Cryptography;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

public sealed class FlasherTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    internal static Task<Esp32Flasher> ConnectAsync(SimulatorServer server, Action<Esp32FlasherOptions>? configure = null)
    {
        var options = new Esp32FlasherOptions();
        configure?.Invoke(options);
        return Esp32Flasher.ConnectAsync(server.Url, options, Token);
    }

    [Theory]
    [InlineData(SimulatedChipType.Esp32, Esp32Chip.Esp32, "v3.1")]
    [InlineData(SimulatedChipType.Esp32S2, Esp32Chip.Esp32S2, "v1.0")]
    [InlineData(SimulatedChipType.Esp32S3, Esp32Chip.Esp32S3, "v0.2")]
    [InlineData(SimulatedChipType.Esp32C3, Esp32Chip.Esp32C3, "v0.4")]
    [InlineData(SimulatedChipType.Esp32C6, Esp32Chip.Esp32C6, "v0.1")]
    [InlineData(SimulatedChipType.Esp32H2, Esp32Chip.Esp32H2, "v1.2")]
    public async Task Connect_EachChip_DetectsChipRevisionMacFlash(SimulatedChipType type, Esp32Chip expected, string revision)
    {
        var options = new SimulatorOptions { Chip = type, FlashSize = 8 * 1024 * 1024, Mac = [0x24, 0x0A, 0xC4, 0xAB, 0xCD, 0xEF] };
        // eFuse words as the chips' eFuse tables lay out the revision fields.
        switch (type)
        {
            case SimulatedChipType.Esp32:
                options.Registers[0x3FF5A00C] = 1u << 15; // BLK0 word 3: rev >= 1
                options.Registers[0x3FF5A014] = (1u << 20) | (1u << 24); // word 5: rev >= 2, minor 1
                options.Registers[0x3FF6607C] = 1u << 31; // APB_CTRL_DATE: rev 3
                break;
            case SimulatedChipType.Esp32S2:
                options.Registers[0x3F41A044 + 12] = 1u << 18; // BLOCK1 word 3: major 1
                break;
            case SimulatedChipType.Esp32S3:
                options.Registers[0x60007044 + 12] = 2u << 18; // BLOCK1 word 3: minor low bits 2
                break;
            case SimulatedChipType.Esp32C3:
                options.Registers[0x60008844 + 12] = 4u << 18; // BLOCK1 word 3: minor low bits 4
                break;
            case SimulatedChipType.Esp32C6:
                options.Registers[0x600B0844 + 12] = 1u << 18; // BLOCK1 word 3: minor 1
                break;
            case SimulatedChipType.Esp32H2:
                options.Registers[0x600B0844 + 12] = (1u << 21) | (2u << 18); // BLOCK1 word 3: major 1, minor 2
                break;
        }

        await using var server = new SimulatorServer(options);
        await using var flasher = await ConnectAsync(server);

        Assert.Equal(expected, flasher.Device.Chip);
        Assert.Equal("24:0a:c4:ab:cd:ef", flasher.Device.MacAddress);
        Assert.Equal(8 * 1024 * 1024, flasher.Device.FlashSize);
        Assert.Equal(0x1740EFu, flasher.Device.FlashId);
        Assert.Equal(revision, flasher.Device.Revision);
        Assert.False(flasher.Connection.IsStub); // loaded on first need

        await flasher.WriteAsync([new Esp32FlashRegion("data", 0x200000, [1, 2, 3, 4])], Token);

        Assert.True(flasher.Connection.IsStub);
        Assert.Equal(921600, server.Simulator.CurrentBaud);
    }

    [Fact]
    public async Task Write_Region_FlashHoldsImageAndResultIsVerified()
    {
        await using var server = new SimulatorServer();
        await using var flasher = await ConnectAsync(server);
        var image = TestImages.FirmwareLike(200 * 1024, 5);

        var result = Assert.Single(await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token));

        Assert.Equal(Esp32RegionStatus.Written, result.Status);
        Assert.True(result.Verified);
        Assert.Equal(Convert.ToHexString(MD5.HashData(image)).ToLowerInvariant(), result.Md5);
        Assert.Equal(image, server.Simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
        Assert.True(result.WireBytes < image.Length, "compressed on the wire");
    }

    [Fact]
    public async Task Write_UnchangedImage_IsSkippedWithoutData_ForceRewrites()
    {
        await using var server = new SimulatorServer();
        var image = TestImages.FirmwareLike(64 * 1024, 6);
        await using (var first = await ConnectAsync(server))
        {
            await first.WriteAsync([new Esp32FlashRegion("app", 0x20000, image)], Token);
        }

        var blocksBefore = server.Simulator.CountOf(0x11);
        var stubUploads = server.Simulator.CountOf(0x05);
        await using (var again = await ConnectAsync(server))
        {
            var skipped = Assert.Single(await again.WriteAsync([new Esp32FlashRegion("app", 0x20000, image)], Token));
            Assert.Equal(Esp32RegionStatus.Skipped, skipped.Status);
            Assert.True(skipped.Verified);
            Assert.Equal(blocksBefore, server.Simulator.CountOf(0x11));
            Assert.Equal(stubUploads, server.Simulator.CountOf(0x05)); // MD5 through the ROM: no stub upload for an unchanged image
        }

        await using var forced = await ConnectAsync(server, o => o.Force = true);
        var rewritten = Assert.Single(await forced.WriteAsync([new Esp32FlashRegion("app", 0x20000, image)], Token));
        Assert.Equal(Esp32RegionStatus.Written, rewritten.Status);
        Assert.True(server.Simulator.CountOf(0x11) > blocksBefore);
    }

    [Fact]
    public async Task Write_BootloaderRegion_HeaderPatchedWithDetectedSize()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { FlashSize = 16 * 1024 * 1024 });
        await using var flasher = await ConnectAsync(server);
        var bootloader = TestImages.Bootloader(0);

        await flasher.WriteAsync([new Esp32FlashRegion("bootloader", 0x1000, bootloader)], Token);

        Assert.Equal(0x4, server.Simulator.Flash[0x1003] >> 4); // 16 MB
        Assert.Equal(bootloader[0x1003 - 0x1000] & 0x0F, server.Simulator.Flash[0x1003] & 0x0F); // frequency kept
        Assert.Equal(bootloader.AsSpan(4).ToArray(), server.Simulator.Flash.AsSpan(0x1004, bootloader.Length - 4).ToArray());
    }

    [Fact]
    public async Task Write_ImageForAnotherChip_RefusedBeforeWriting()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32C3 });
        await using var flasher = await ConnectAsync(server);

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, TestImages.App(0, 4096))], Token));

        Assert.Equal("Esp32ImageChipMismatch", ex.ErrorId);
        Assert.Contains("ESP32-C3", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, server.Simulator.CountOf(0x10));
    }

    [Fact]
    public async Task Write_ImageLargerThanFlash_RefusedBeforeWriting()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { FlashSize = 1024 * 1024 });
        await using var flasher = await ConnectAsync(server);

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => flasher.WriteAsync([new Esp32FlashRegion("app", 0xF0000, new byte[0x20000])], Token));

        Assert.Equal("Esp32ImageTooLarge", ex.ErrorId);
        Assert.Contains("0xF0000", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, server.Simulator.CountOf(0x10));
    }

    [Fact]
    public async Task Connect_ExpectedChipDiffers_ChipMismatch()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32S3 });

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => ConnectAsync(server, o => o.Chip = Esp32Chip.Esp32));

        Assert.Equal("Esp32ChipMismatch", ex.ErrorId);
        Assert.Contains("-Chip Esp32S3", ex.RecommendedAction, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_RomOnly_WritesUncompressedBlocksWithEncryptedWord()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32C3 });
        await using var flasher = await ConnectAsync(server, o => o.UseStub = false);
        var image = TestImages.FirmwareLike(8 * 1024, 8);

        var result = Assert.Single(await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token));

        Assert.False(flasher.Connection.IsStub);
        Assert.Equal(Esp32RegionStatus.Written, result.Status);
        Assert.Equal(image, server.Simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
    }

    [Fact]
    public async Task EraseAndRead_RegionAndWholeFlash()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { FlashSize = 2 * 1024 * 1024 });
        await using var flasher = await ConnectAsync(server);
        var image = TestImages.FirmwareLike(40 * 1024, 9);
        await flasher.WriteAsync([new Esp32FlashRegion("data", 0x100000, image)], Token);

        Assert.Equal(image, await flasher.ReadFlashAsync(0x100000, (uint)image.Length, Token));

        await flasher.EraseRegionAsync(0x100000, 0x1000, Token);
        var read = await flasher.ReadFlashAsync(0x100000, 0x2000, Token);
        Assert.All(read[..0x1000], b => Assert.Equal(0xFF, b));
        Assert.Equal(image[0x1000..0x2000], read[0x1000..]);

        var misaligned = await Assert.ThrowsAsync<IoTHubMqttException>(() => flasher.EraseRegionAsync(0x100010, 0x1000, Token));
        Assert.Equal("Esp32RegionNotAligned", misaligned.ErrorId);

        await flasher.EraseFlashAsync(Token);
        Assert.All(server.Simulator.Flash, b => Assert.Equal(0xFF, b));
    }

    [Fact]
    public async Task Connect_NothingListening_PortNotFound()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => Esp32Flasher.ConnectAsync($"socket://127.0.0.1:{port}", null, Token));

        Assert.Equal("Esp32PortNotFound", ex.ErrorId);
    }

    [Theory]
    [InlineData("socket://", "Esp32InvalidPort")]
    [InlineData("socket://127.0.0.1", "Esp32InvalidPort")]
    [InlineData("ftp://127.0.0.1:21", "Esp32InvalidPort")]
    [InlineData("/dev/does-not-exist-esp", "Esp32PortNotFound")]
    public async Task Open_BadPort_ClearError(string port, string errorId)
    {
        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => Esp32Flasher.ConnectAsync(port, null, Token));
        Assert.Equal(errorId, ex.ErrorId);
    }
}
