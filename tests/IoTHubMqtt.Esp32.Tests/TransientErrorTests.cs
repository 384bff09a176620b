using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>
/// The flasher rewrites a region after a transient error (an answer lost or garbled: Esp32Timeout, Esp32ProtocolError in
/// the ErrorIds table), and never after a permanent one (the port gone: Esp32PortClosed).
/// </summary>
public sealed class TransientErrorTests
{
    private const byte DeflBegin = 0x10;
    private const byte DeflData = 0x11;
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(SimulatorFaultKind.DropResponse, ErrorIds.Esp32Timeout)]
    [InlineData(SimulatorFaultKind.CorruptResponse, ErrorIds.Esp32ProtocolError)]
    public async Task ATransientError_WhileWriting_RewritesTheRegion(SimulatorFaultKind fault, string errorId)
    {
        Assert.True(ErrorCatalog.Get(errorId).Transient);
        var options = new SimulatorOptions();
        options.Faults.Add(new SimulatorFault(fault, DeflData, 2));
        await using var server = new SimulatorServer(options);
        var log = new List<string>();
        await using var flasher = await FlasherTests.ConnectAsync(server, o => o.Log = line => { lock (log) { log.Add(line); } });
        var image = TestImages.FirmwareLike(64 * 1024, 21);

        var result = Assert.Single(await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token));

        Assert.Equal(2, result.Attempts);
        Assert.Equal(2, server.Simulator.CountOf(DeflBegin));
        Assert.Contains(log, line => line.Contains("Re-syncing (attempt 1)", StringComparison.Ordinal));
        Assert.Equal(image, server.Simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
    }

    [Fact]
    public async Task APermanentError_WhileWriting_IsNotRetried()
    {
        Assert.False(ErrorCatalog.Get(ErrorIds.Esp32PortClosed).Transient);
        var options = new SimulatorOptions();
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.Disconnect, DeflData, 2));
        await using var server = new SimulatorServer(options);
        await using var flasher = await FlasherTests.ConnectAsync(server);

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, TestImages.FirmwareLike(64 * 1024, 22))], Token));

        Assert.Equal(ErrorIds.Esp32SyncLost, ex.ErrorId);
        Assert.IsType<IoTHubMqttException>(ex.InnerException);
        Assert.Equal(ErrorIds.Esp32PortClosed, ((IoTHubMqttException)ex.InnerException!).ErrorId);
        Assert.Equal(1, server.Simulator.CountOf(DeflBegin));
    }
}
