using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>Per-chip handling the reference flasher does and the datasheets call for: watchdogs, the forced-download bit, flash sizes.</summary>
public sealed class ChipQuirkTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(SimulatedChipType.Esp32C3, 0x60008090u, 0x600080ACu, 1u << 31)]
    [InlineData(SimulatedChipType.Esp32S3, 0x60008098u, 0x600080B4u, 1u << 31)]
    [InlineData(SimulatedChipType.Esp32C6, 0x600B1C00u, 0x600B1C1Cu, 1u << 18)]
    [InlineData(SimulatedChipType.Esp32H2, 0x600B1C00u, 0x600B1C1Cu + 4, 1u << 18)]
    public async Task OverUsbJtagSerial_RtcWatchdogDisabled_SuperWatchdogFedByItself(SimulatedChipType chip, uint wdtConfig0, uint swdConfig, uint autoFeed)
    {
        var options = new SimulatorOptions { Chip = chip };
        options.Registers[wdtConfig0] = 0x8000_0000 | (5u << 28); // enabled, as the ROM leaves it on USB
        options.Registers[swdConfig] = 0x0000_0100;
        await using var server = new SimulatorServer(options);

        await using var flasher = await FlasherTests.ConnectAsync(server, o => o.UsbProductId = ResetStrategy.UsbJtagSerialProductId);

        Assert.Equal(0u, server.Simulator.Register(wdtConfig0));
        Assert.Equal(0x0000_0100 | autoFeed, server.Simulator.Register(swdConfig));
    }

    [Fact]
    public async Task OverAUsbUartBridge_WatchdogsLeftAlone()
    {
        var options = new SimulatorOptions { Chip = SimulatedChipType.Esp32C3 };
        options.Registers[0x60008090] = 0x8000_0000;
        await using var server = new SimulatorServer(options);

        await using var flasher = await FlasherTests.ConnectAsync(server, o => o.UsbProductId = 0xEA60); // CP210x

        Assert.Equal(0x8000_0000u, server.Simulator.Register(0x60008090));
    }

    [Fact]
    public async Task S3_HardReset_ClearsTheForcedDownloadBit()
    {
        var options = new SimulatorOptions { Chip = SimulatedChipType.Esp32S3 };
        options.Registers[0x6000812C] = 0x0000_0011; // RTC_CNTL_OPTION1: forced download set (bit 0), another bit kept
        await using var server = new SimulatorServer(options);
        await using var flasher = await FlasherTests.ConnectAsync(server);

        await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, TestImages.FirmwareLike(4096, 80))], Token);

        Assert.Equal(0x0000_0010u, server.Simulator.Register(0x6000812C));
    }

    [Theory]
    [InlineData(0x1840EFu, 16L * 1024 * 1024)] // Winbond W25Q128
    [InlineData(0x1B40EFu, 128L * 1024 * 1024)] // capacity byte 0x1B, unknown before
    [InlineData(0x2040C8u, 64L * 1024 * 1024)] // GigaDevice-style 0x20 = 64 MB
    [InlineData(0x3960C2u, 32L * 1024 * 1024)] // 1.8 V part, 0x39 = 32 MB
    [InlineData(0x00881Fu, 8L * 1024 * 1024)] // Adesto, size in the low 5 bits of the device byte
    public void FlashSize_FromJedecId(uint id, long size) => Assert.Equal(size, Esp32FlashSize.FromJedecId(id));

    [Theory]
    [InlineData(0x1140EFu)]
    [InlineData(0xFFFFFFu)]
    [InlineData(0x000000u)]
    public void FlashSize_UnknownId_IsUnknown(uint id) => Assert.Null(Esp32FlashSize.FromJedecId(id));

    [Fact]
    public async Task UnknownFlashId_BootloaderHeaderKeepsItsSize_NotSilently4MB()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { FlashSize = 16 * 1024 * 1024, FlashJedecId = 0x4D40EF });
        var log = new List<string>();
        await using var flasher = await FlasherTests.ConnectAsync(server, o => o.Log = log.Add);
        var bootloader = TestImages.Bootloader(0);
        bootloader[3] = (byte)(0x40 | (bootloader[3] & 0x0F)); // the image says 16 MB (code 4)
        TestImages.Seal(bootloader);

        await flasher.WriteAsync([new Esp32FlashRegion("bootloader", 0x1000, bootloader)], Token);

        Assert.False(flasher.Device.FlashSizeDetected);
        Assert.Equal(0x4, server.Simulator.Flash[0x1003] >> 4); // kept, not rewritten to 4 MB (code 2)
        Assert.Contains(log, line => line.Contains("does not say its size", StringComparison.Ordinal));
    }
}
