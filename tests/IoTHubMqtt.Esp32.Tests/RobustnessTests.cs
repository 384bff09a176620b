using System.Net;
using System.Net.Sockets;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Core.Esp32.Transport;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

public sealed class RobustnessTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>
    /// A simulator stopped the moment it was started (Start-Esp32Simulator, then Stop-Esp32Simulator at once) stops
    /// cleanly: its accept loop, which may not have begun waiting yet, finds the listener stopped and ends.
    /// </summary>
    [Fact]
    public async Task SimulatorStoppedAsSoonAsStarted_StopsCleanly()
    {
        for (var i = 0; i < 3000; i++)
        {
            var server = new SimulatorServer(new SimulatorOptions { FlashSize = 64 * 1024 });
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task PeerSendingGarbage_SyncFailed_NoHang()
    {
        // A "board" that answers everything with random bytes, SLIP delimiters and escapes included.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Token);
        var noise = Task.Run(async () =>
        {
            var random = new Random(7);
            var buffer = new byte[512];
            try
            {
                // The flasher may give up (its clock jumps) before this accepts: then the accept is cancelled.
                using var client = await listener.AcceptTcpClientAsync(stop.Token);
                var stream = client.GetStream();
                while (!stop.IsCancellationRequested)
                {
                    random.NextBytes(buffer);
                    await stream.WriteAsync(buffer, stop.Token);
                    await Task.Delay(5, stop.Token);
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException)
            {
            }
        }, Token);
        var clock = new JumpingClock();

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => Esp32Flasher.ConnectAsync($"socket://127.0.0.1:{port}", new Esp32FlasherOptions { ConnectAttempts = 1, TimeProvider = clock }, Token));

        await stop.CancelAsync();
        Assert.Equal("Esp32SyncFailed", ex.ErrorId);
        Assert.True(clock.Elapsed <= TimeSpan.FromSeconds(1), $"gave up after {clock.Elapsed} on the clock"); // 5 SYNCs x 200 ms
        await noise.WaitAsync(TimeSpan.FromSeconds(5), Token);
    }

    [Theory]
    [InlineData(SimulatedChipType.Esp32)]
    [InlineData(SimulatedChipType.Esp32S3)]
    public async Task RomOnlyWrite_EachFlashBeginLayout_Verified(SimulatedChipType chip)
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = chip });
        await using var flasher = await FlasherTests.ConnectAsync(server, o => o.UseStub = false);
        var image = TestImages.FirmwareLike(6 * 1024, 41);

        var result = Assert.Single(await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token));

        Assert.Equal(Esp32RegionStatus.Written, result.Status);
        Assert.Equal(image, server.Simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
    }

    [Fact]
    public void SerialOpenErrors_MapToFixes()
    {
        var unixDenied = Assert.IsType<IoTHubMqttException>(SerialPortTransport.MapOpenError("/dev/ttyUSB0", new UnauthorizedAccessException("Access to the port '/dev/ttyUSB0' is denied."), windows: false));
        Assert.Equal("Esp32PermissionDenied", unixDenied.ErrorId);
        Assert.Equal(IoTHubErrorKind.PermissionDenied, unixDenied.Kind);

        var windowsBusy = Assert.IsType<IoTHubMqttException>(SerialPortTransport.MapOpenError("COM5", new UnauthorizedAccessException("Access to the path 'COM5' is denied."), windows: true));
        Assert.Equal("Esp32PortBusy", windowsBusy.ErrorId);
        Assert.Contains("serial monitor", windowsBusy.RecommendedAction, StringComparison.Ordinal);

        var unixBusy = Assert.IsType<IoTHubMqttException>(SerialPortTransport.MapOpenError("/dev/ttyACM0", new IOException("Device or resource busy : '/dev/ttyACM0'"), windows: false));
        Assert.Equal("Esp32PortBusy", unixBusy.ErrorId);

        // .NET on Unix reports EBUSY (a tty another program opened with TIOCEXCL) as access denied too: a port whose
        // permissions let us in is busy, not forbidden (tests/IoTHubMqtt.Module.Tests PortAccessTests checks both for real).
        if (!OperatingSystem.IsWindows())
        {
            var readable = Path.GetTempFileName();
            try
            {
                var held = Assert.IsType<IoTHubMqttException>(SerialPortTransport.MapOpenError(readable, new UnauthorizedAccessException("Access to the port is denied."), windows: false));
                Assert.Equal("Esp32PortBusy", held.ErrorId);
            }
            finally
            {
                File.Delete(readable);
            }
        }
    }

    [Fact]
    public void PermissionDenied_OnLinux_NamesDialoutGroup()
    {
        var ex = Esp32Errors.PermissionDenied("/dev/ttyUSB0", null);
        if (OperatingSystem.IsLinux())
        {
            Assert.Contains("dialout", ex.RecommendedAction, StringComparison.Ordinal);
        }
        else
        {
            Assert.DoesNotContain("dialout", ex.RecommendedAction, StringComparison.Ordinal);
        }
    }
}
