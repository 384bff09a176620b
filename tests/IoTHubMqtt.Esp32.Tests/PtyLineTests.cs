using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Core.Esp32.Transport;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>
/// The real System.IO.Ports path over a pseudo-terminal the simulator makes itself (Linux): the simulator reads the line
/// speed the host sets on its end, so a host and a chip whose UARTs run at different rates hear each other as noise, as
/// on a real line. Without DTR/RTS on a pty nothing can reset the board between sessions.
/// </summary>
public sealed class PtyLineTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static void RequirePty() =>
        Assert.SkipUnless(SimulatorServer.PtyUnsupportedReason is null, SimulatorServer.PtyUnsupportedReason ?? string.Empty);

    private static SimulatorServer PtyServer(SimulatorOptions options, string? link = null) =>
        new(new Esp32Simulator(options), SimulatorTransport.Pty, link);

    [Fact]
    public async Task Flash_At921600_HostRateSeenOnThePty_NoNoise_LinkNamesThePty()
    {
        RequirePty();
        var link = Path.Combine(Path.GetTempPath(), $"esp32pty-{Guid.NewGuid():N}");
        await using (var server = PtyServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32S3 }, link))
        {
            Assert.Equal(link, server.Port);
            Assert.Equal(server.PtyPath, new FileInfo(link).ResolveLinkTarget(returnFinalTarget: true)!.FullName);
            var image = TestImages.FirmwareLike(64 * 1024, 23);

            await using var flasher = await Esp32Flasher.ConnectAsync(server.Port, new Esp32FlasherOptions { BaudRate = 921600 }, Token);
            var result = Assert.Single(await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token));

            Assert.IsType<SerialPortTransport>(flasher.Connection.Port);
            Assert.False(flasher.Connection.Port.HasControlLines); // a pty has no modem lines: no reset is tried
            Assert.Equal(Esp32RegionStatus.Written, result.Status);
            Assert.Equal(921600, server.HostBaudRate);
            Assert.Equal(921600, server.Simulator.CurrentBaud);
            Assert.Equal(0, server.Simulator.GarbledBytes);
            Assert.Equal(image, server.ReadFlash(0x10000, image.Length));
        }

        Assert.False(File.Exists(link));
    }

    [Fact]
    public async Task NewSession_StubLeftRunningAt921600_NoiseAt115200_FoundAtItsRateAndReused()
    {
        RequirePty();
        await using var server = PtyServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32C3 });
        var image = TestImages.FirmwareLike(32 * 1024, 24);
        await using (var first = await Esp32Flasher.ConnectAsync(server.Port, new Esp32FlasherOptions { BaudRate = 921600 }, Token))
        {
            await first.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token);
        }

        // The hard reset after the write could not reach the board: its stub still talks at 921600.
        Assert.True(server.Simulator.StubRunning);
        Assert.Equal(921600, server.Simulator.CurrentBaud);

        var log = new List<string>();
        var update = TestImages.FirmwareLike(32 * 1024, 27);
        await using var second = await Esp32Flasher.ConnectAsync(server.Port, new Esp32FlasherOptions { BaudRate = 460800, Log = log.Add }, Token);
        var results = await second.WriteAsync([new Esp32FlashRegion("app", 0x10000, image), new Esp32FlashRegion("update", 0x20000, update)], Token);

        Assert.True(server.Simulator.GarbledBytes > 0); // the SYNCs at 115200 were noise to the stub
        Assert.True(second.Connection.FoundRunningStub);
        Assert.Contains(log, l => l.StartsWith("Synced with the flasher stub", StringComparison.Ordinal) && l.EndsWith("at 921600 baud", StringComparison.Ordinal));
        Assert.Equal([Esp32RegionStatus.Skipped, Esp32RegionStatus.Written], results.Select(r => r.Status));
        Assert.Equal(460800, server.Simulator.CurrentBaud); // then switched to this session's rate, as asked
        Assert.Equal(460800, server.HostBaudRate);
        Assert.Equal(update, server.ReadFlash(0x20000, update.Length));
    }

    [Fact]
    public async Task ChipIgnoresChangeBaudRate_HostAloneSwitches_NoiseThenBackTo115200_WritesVerifiedWithAWarning()
    {
        RequirePty();
        await using var server = PtyServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32, IgnoreBaudRateChange = true });
        var image = TestImages.FirmwareLike(16 * 1024, 25);
        var warnings = new List<string>();

        await using var flasher = await Esp32Flasher.ConnectAsync(server.Port, new Esp32FlasherOptions { BaudRate = 921600, Warn = warnings.Add }, Token);
        var result = Assert.Single(await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token));

        Assert.True(server.Simulator.GarbledBytes > 0);
        Assert.Equal(115200, server.Simulator.CurrentBaud);
        Assert.Equal(115200, flasher.Connection.Port.BaudRate);
        Assert.Equal(Esp32RegionStatus.Written, result.Status);
        Assert.Equal(image, server.ReadFlash(0x10000, image.Length));
        Assert.Contains("did not switch to 921600 baud", Assert.Single(warnings), StringComparison.Ordinal);
    }

    [Fact]
    public async Task LineCannotCarryTheRate_BaudRateFailed_NextSessionSyncFailedNamingRatesTried_ResetRecovers()
    {
        RequirePty();
        var options = new SimulatorOptions { Chip = SimulatedChipType.Esp32C6, MaxBaudRate = 921600 };
        await using var server = PtyServer(options);
        var image = TestImages.FirmwareLike(16 * 1024, 26);

        await using (var flasher = await Esp32Flasher.ConnectAsync(server.Port, new Esp32FlasherOptions { BaudRate = 1500000 }, Token))
        {
            var failed = await Assert.ThrowsAsync<IoTHubMqttException>(() => flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token));
            Assert.Equal("Esp32BaudRateFailed", failed.ErrorId);
            Assert.Contains("1500000 baud", failed.Message, StringComparison.Ordinal);
        }

        Assert.True(server.Simulator.GarbledBytes > 0);
        Assert.True(server.ReadFlash(0x10000, image.Length).All(b => b == 0xFF), "nothing may be written");

        // The stub now talks at 1500000, which the line does not carry: no rate reaches it until the board is reset.
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => Esp32Flasher.ConnectAsync(server.Port, new Esp32FlasherOptions { ConnectAttempts = 1 }, Token));
        Assert.Equal("Esp32SyncFailed", error.ErrorId);
        Assert.Contains("921600, 460800, 230400 baud", error.Message, StringComparison.Ordinal);

        server.Simulator.Reset(); // EN pressed: the ROM at 115200 again
        await using var again = await Esp32Flasher.ConnectAsync(server.Port, new Esp32FlasherOptions { BaudRate = 921600 }, Token);
        Assert.Equal(Esp32RegionStatus.Written, Assert.Single(await again.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token)).Status);
    }

    [Fact]
    public async Task HostChangesItsRateWithoutTellingTheChip_RequestsAreNoise_NoAnswer_SwitchingBackRecovers()
    {
        RequirePty();
        await using var server = PtyServer(new SimulatorOptions());
        await using var port = SerialPortTransport.Open(server.Port);
        var connection = new Esp32Connection(port);
        await connection.ConnectAsync(ResetStrategy.For(Esp32ResetMode.None, port), 1, Token);
        var magic = await connection.ReadRegisterAsync(0x40001000, Token);

        await port.SetBaudRateAsync(460800, Token);
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() =>
            connection.CommandAsync(Esp32Command.ReadReg(0x40001000), timeout: TimeSpan.FromMilliseconds(300), cancellationToken: Token));

        Assert.Equal("Esp32Timeout", error.ErrorId);
        Assert.Equal(460800, server.HostBaudRate);
        Assert.True(server.Simulator.GarbledBytes > 0);

        await port.SetBaudRateAsync(115200, Token);
        connection.DiscardInput();
        Assert.Equal(magic, await connection.ReadRegisterAsync(0x40001000, Token));
    }

    [Fact]
    public async Task FaultsOverThePty_LostAndCorruptedResponses_Recovered()
    {
        RequirePty();
        var options = new SimulatorOptions();
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.CorruptResponse, 0x0A, 3)); // a register read during detection
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.DropResponse, 0x11, 2)); // a data block during the write
        await using var server = PtyServer(options);
        var image = TestImages.FirmwareLike(64 * 1024, 22);

        await using var flasher = await Esp32Flasher.ConnectAsync(server.Port, new Esp32FlasherOptions(), Token);
        var result = Assert.Single(await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token));

        Assert.Equal(2, result.Attempts);
        Assert.Equal(image, server.ReadFlash(0x10000, image.Length));
    }

    [Fact]
    public void PtyElsewhere_RefusedWithTheReason()
    {
        Assert.SkipWhen(SimulatorServer.PtyUnsupportedReason is null, "This computer makes ptys.");
        var error = Assert.Throws<PlatformNotSupportedException>(() => PtyServer(new SimulatorOptions()));
        Assert.Equal(SimulatorServer.PtyUnsupportedReason, error.Message);
    }
}
