using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>Flash mode, size and frequency patched into the bootloader header, per chip, as it lands in the simulator's flash.</summary>
public sealed class BootloaderHeaderTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(Esp32Chip.Esp32, "80m", 0xF)]
    [InlineData(Esp32Chip.Esp32, "40m", 0x0)]
    [InlineData(Esp32Chip.Esp32S3, "26m", 0x1)]
    [InlineData(Esp32Chip.Esp32C3, "20m", 0x2)]
    [InlineData(Esp32Chip.Esp32C6, "80m", 0x0)]
    [InlineData(Esp32Chip.Esp32C6, "20m", 0x2)]
    [InlineData(Esp32Chip.Esp32H2, "48m", 0xF)]
    [InlineData(Esp32Chip.Esp32H2, "16m", 0x1)]
    [InlineData(Esp32Chip.Esp32H2, "12M", 0x2)]
    public void FrequencyCode_PerChip(Esp32Chip chip, string frequency, int code) =>
        Assert.Equal(code, Esp32Image.FrequencyCode(chip, frequency));

    [Theory]
    [InlineData(Esp32Chip.Esp32, "48m")]
    [InlineData(Esp32Chip.Esp32C6, "26m")]
    [InlineData(Esp32Chip.Esp32H2, "80m")]
    public void FrequencyCode_NotOnThisChip_IsNull(Esp32Chip chip, string frequency) =>
        Assert.Null(Esp32Image.FrequencyCode(chip, frequency));

    [Theory]
    [InlineData(SimulatedChipType.Esp32, 0, 0x1000u, "40m", 0x40)]
    [InlineData(SimulatedChipType.Esp32C3, 5, 0x0u, "80m", 0x4F)]
    [InlineData(SimulatedChipType.Esp32H2, 16, 0x0u, "24m", 0x40)]
    public async Task Bootloader_ModeSizeFrequency_PatchedInFlash(SimulatedChipType type, int chipId, uint offset, string frequency, byte expected)
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = type });
        await using var flasher = await FlasherTests.ConnectAsync(server, o =>
        {
            o.FlashMode = Esp32FlashMode.Dout;
            o.FlashSize = 16 * 1024 * 1024;
            o.FlashFrequency = frequency;
        });
        var bootloader = TestImages.Bootloader(chipId, hashAppended: true);

        await flasher.WriteAsync(flasher.Prepare([new Esp32FlashRegion("bootloader", offset, bootloader)]), Token);

        var written = server.Simulator.Flash.AsSpan((int)offset, bootloader.Length).ToArray();
        Assert.Equal((byte)Esp32FlashMode.Dout, written[2]);
        Assert.Equal(expected, written[3]);
        Assert.Equal(bootloader[4..^32], written[4..^32]);
        var end = Esp32Image.HashedLength(written)!.Value;
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(written.AsSpan(0, end)), written[end..(end + 32)]);
    }

    [Fact]
    public async Task Frequency_TheChipDoesNotHave_IsAnErrorBeforeWriting()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32C6 });
        await using var flasher = await FlasherTests.ConnectAsync(server, o => o.FlashFrequency = "26m");

        var error = Assert.Throws<IoTHubMqttException>(() => flasher.Prepare([new Esp32FlashRegion("bootloader", 0x0, TestImages.Bootloader(13))]));

        Assert.Equal("Esp32FlashFrequencyNotSupported", error.ErrorId);
        Assert.Contains("80m, 40m, 20m", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, server.Simulator.CountOf(0x02));
    }
}
