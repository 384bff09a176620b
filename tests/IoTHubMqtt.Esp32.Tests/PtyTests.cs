using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>
/// socat, a widely used pty bridge, between System.IO.Ports and the simulator's TCP port: the serial path against a pty that
/// is not ours. Fails (does not skip) without socat. The in-process pty (<see cref="PtyLineTests"/>) covers the rest.
/// </summary>
public sealed class PtyTests
{
    [Fact]
    public async Task SerialPort_OverPty_DetectsWritesAndVerifies()
    {
        var token = TestContext.Current.CancellationToken;
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32S3 });
        using var pty = new PtyBridge(server);
        await using var flasher = await Esp32Flasher.ConnectAsync(pty.DevicePath, new Esp32FlasherOptions { BaudRate = 460800 }, token);
        var image = TestImages.FirmwareLike(64 * 1024, 21);

        var result = Assert.Single(await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], token));

        Assert.IsType<Core.Esp32.Transport.SerialPortTransport>(flasher.Connection.Port);
        Assert.Equal(Esp32Chip.Esp32S3, flasher.Device.Chip);
        Assert.Equal(Esp32RegionStatus.Written, result.Status);
        Assert.Equal(460800, flasher.Connection.Port.BaudRate);
        Assert.Equal(image, server.Simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
    }
}
