using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>rfc2217:// carries DTR/RTS: the simulated board runs its app until the classic reset puts it in the loader.</summary>
public sealed class Rfc2217Tests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ClassicReset_OverRfc2217_EntersLoader_WritesAtNewBaud_ResetsIntoApp()
    {
        var simulator = new Esp32Simulator(new SimulatorOptions { Chip = SimulatedChipType.Esp32C3, StartInBootloader = false });
        await using var server = new SimulatorServer(simulator, rfc2217: true);
        var image = TestImages.FirmwareLike(48 * 1024, 40);

        await using (var flasher = await Esp32Flasher.ConnectAsync(server.Url, new Esp32FlasherOptions { BaudRate = 460800 }, Token))
        {
            Assert.IsType<Core.Esp32.Transport.Rfc2217Port>(flasher.Connection.Port);
            Assert.Equal(SimulatedBootMode.Download, simulator.Mode);
            var result = Assert.Single(await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token));
            Assert.Equal(Esp32RegionStatus.Written, result.Status);
            Assert.Equal(460800, server.LastRfc2217Stream!.HostBaudRate);
        }

        Assert.Equal(image, simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
        // Hard reset after the write (EN pulsed with IO0 high); the line changes reach the simulator asynchronously.
        for (var i = 0; i < 100 && simulator.Mode != SimulatedBootMode.Application; i++)
        {
            await Task.Delay(50, Token);
        }

        Assert.Equal(SimulatedBootMode.Application, simulator.Mode);
        Assert.True(simulator.Resets >= 2);
    }

    [Fact]
    public async Task NoReset_AppRunning_SyncFailedQuotesBootLog()
    {
        var simulator = new Esp32Simulator(new SimulatorOptions { StartInBootloader = false });
        await using var server = new SimulatorServer(simulator, rfc2217: true);
        await using var port = await Core.Esp32.Transport.Rfc2217Port.ConnectAsync(server.Url, "127.0.0.1", server.TcpPort, cancellationToken: Token);

        // Reset into the application (IO0 high): the board prints its boot log and ignores the loader protocol.
        await ResetStrategy.HardResetAsync(port, TimeProvider.System, Token);
        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() =>
            Esp32Flasher.ConnectAsync(port, new Esp32FlasherOptions { Reset = Esp32ResetMode.None, ConnectAttempts = 1 }, cancellationToken: Token));

        Assert.Contains("boot:0x13 (SPI_FAST_FLASH_BOOT)", ex.Message, StringComparison.Ordinal);
        Assert.Equal("Esp32SyncFailed", ex.ErrorId);
        Assert.Equal(SimulatedBootMode.Application, simulator.Mode);
    }
}

/// <summary>A line whose two ends run at different baud rates carries noise, as a UART does: nothing is taken for a frame.</summary>
public sealed class BaudMismatchTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task StubLeftAtAnotherBaud_HostAt115200WithoutReset_FramesGarbled_SyncFailed_ResetRecovers()
    {
        var simulator = new Esp32Simulator(new SimulatorOptions { Chip = SimulatedChipType.Esp32C3 });
        await using var server = new SimulatorServer(simulator, rfc2217: true);
        var image = TestImages.FirmwareLike(16 * 1024, 90);
        await using (var flasher = await Esp32Flasher.ConnectAsync(server.Url, new Esp32FlasherOptions { BaudRate = 460800, Reset = Esp32ResetMode.None, ResetAfter = false }, Token))
        {
            await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token);
        }

        Assert.True(simulator.StubRunning);
        Assert.Equal(460800, simulator.CurrentBaud); // the stub still talks at the transfer rate

        // A new session opens the line at 115200 and does not reset: the chip hears noise, the host reads noise.
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => Esp32Flasher.ConnectAsync(server.Url, new Esp32FlasherOptions { Reset = Esp32ResetMode.None, ConnectAttempts = 1 }, Token));
        Assert.Equal("Esp32SyncFailed", error.ErrorId);
        Assert.True(simulator.GarbledBytes > 0);

        // The classic reset over RFC 2217 brings the chip back to its ROM at 115200: the same line works again.
        await using var again = await Esp32Flasher.ConnectAsync(server.Url, new Esp32FlasherOptions { BaudRate = 460800 }, Token);
        Assert.Equal(Esp32RegionStatus.Skipped, Assert.Single(await again.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token)).Status);
    }
}
