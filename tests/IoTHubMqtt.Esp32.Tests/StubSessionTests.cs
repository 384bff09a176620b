using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>The flasher stub's life across sessions and lost answers around it: reused when found running, never lost to one dropped frame.</summary>
public sealed class StubSessionTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(SimulatedChipType.Esp32)]
    [InlineData(SimulatedChipType.Esp32C3)]
    public async Task FlashTwice_NoResetBetween_RunningStubReusedAndSecondImageWritten(SimulatedChipType chip)
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = chip });
        var first = TestImages.FirmwareLike(32 * 1024, 60);
        var second = TestImages.FirmwareLike(32 * 1024, 61);
        await using (var flasher = await FlasherTests.ConnectAsync(server))
        {
            await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, first)], Token);
        }

        Assert.True(server.Simulator.StubRunning); // socket:// has no reset line: the stub is still running
        var uploads = server.Simulator.CountOf((byte)Esp32Opcode.MemEnd);

        await using var again = await FlasherTests.ConnectAsync(server);
        var result = Assert.Single(await again.WriteAsync([new Esp32FlashRegion("app", 0x10000, second)], Token));

        Assert.True(again.Connection.FoundRunningStub);
        Assert.Equal(Esp32RegionStatus.Written, result.Status);
        Assert.Equal(1, result.Attempts);
        Assert.Equal(uploads, server.Simulator.CountOf((byte)Esp32Opcode.MemEnd)); // not uploaded again
        Assert.Equal(second, server.Simulator.Flash.AsSpan(0x10000, second.Length).ToArray());
    }

    [Fact]
    public async Task RunningStub_UnchangedImage_SkippedThroughTheStub()
    {
        await using var server = new SimulatorServer();
        var image = TestImages.FirmwareLike(16 * 1024, 62);
        await using (var flasher = await FlasherTests.ConnectAsync(server))
        {
            await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token);
        }

        await using var again = await FlasherTests.ConnectAsync(server);
        Assert.Equal(Esp32Chip.Esp32, again.Device.Chip);
        Assert.Equal(Esp32RegionStatus.Skipped, Assert.Single(await again.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token)).Status);
    }

    [Fact]
    public async Task Md5AnswerLostAfterWrite_AskedAgain_RegionNotRewritten()
    {
        var options = new SimulatorOptions();
        // MD5 #1 is the skip-unchanged check through the ROM, #2 the verification after the write.
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.DropResponse, (byte)Esp32Opcode.SpiFlashMd5, 2));
        await using var server = new SimulatorServer(options);
        await using var flasher = await FlasherTests.ConnectAsync(server);
        var image = TestImages.FirmwareLike(64 * 1024, 63);

        var result = Assert.Single(await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token));

        Assert.Equal(1, result.Attempts);
        Assert.Equal(1, server.Simulator.CountOf((byte)Esp32Opcode.FlashDeflBegin)); // written once
        Assert.Equal(3, server.Simulator.CountOf((byte)Esp32Opcode.SpiFlashMd5)); // check, lost verification, asked again
        Assert.Equal(image, server.Simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
    }

    [Fact]
    public async Task MemEndAnswerLost_StubGreetingAccepted_FlashGoesOn()
    {
        var options = new SimulatorOptions { Chip = SimulatedChipType.Esp32S3 };
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.DropResponse, (byte)Esp32Opcode.MemEnd, 1));
        await using var server = new SimulatorServer(options);
        await using var flasher = await FlasherTests.ConnectAsync(server);
        var image = TestImages.FirmwareLike(16 * 1024, 64);

        var result = Assert.Single(await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token));

        Assert.True(flasher.Connection.IsStub);
        Assert.Equal(1, server.Simulator.CountOf((byte)Esp32Opcode.MemEnd)); // one upload
        Assert.Equal(Esp32RegionStatus.Written, result.Status);
        Assert.Equal(image, server.Simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
    }

    [Fact]
    public async Task Esp32Rom_SecurityInfoRefused_RecognisedAsUnsupportedAndChipFoundByMagic()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32 });
        var log = new List<string>();
        await using var flasher = await FlasherTests.ConnectAsync(server, o => o.Log = log.Add);

        Assert.Equal(Esp32Chip.Esp32, flasher.Device.Chip);
        Assert.Contains(log, line => line.Contains("does not support GetSecurityInfo", StringComparison.Ordinal));
    }
}
