using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>Each fault the simulator injects: the flasher recovers within bounds or fails with the region and offset named.</summary>
public sealed class FaultTests
{
    private const byte DeflData = 0x11;
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task<(IReadOnlyList<Esp32RegionResult> Results, byte[] Image, SimulatorServer Server)> FlashWithAsync(SimulatorOptions options, int length = 96 * 1024)
    {
        var server = new SimulatorServer(options);
        await using var flasher = await FlasherTests.ConnectAsync(server);
        var image = TestImages.FirmwareLike(length, 11);
        var results = await flasher.WriteAsync([new Esp32FlashRegion("app", 0x10000, image)], Token);
        return (results, image, server);
    }

    [Fact]
    public async Task NoAnswerToFirstSyncs_ConnectsAfterRetries()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { IgnoreFirstSyncs = 3 });
        await using var flasher = await FlasherTests.ConnectAsync(server);
        Assert.Equal(Esp32Chip.Esp32, flasher.Device.Chip);
        Assert.True(server.Simulator.CountOf(0x08) >= 4);
    }

    [Fact]
    public async Task NeverAnswersSync_SyncFailedWithBootHint_Bounded()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { IgnoreFirstSyncs = int.MaxValue });
        var clock = new JumpingClock();
        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => FlasherTests.ConnectAsync(server, o => { o.ConnectAttempts = 2; o.TimeProvider = clock; }));
        Assert.Equal("Esp32SyncFailed", ex.ErrorId);
        Assert.Contains("BOOT", ex.RecommendedAction, StringComparison.Ordinal);

        // On the clock: 2 attempts x 5 SYNCs x 200 ms waited for an answer, and no more.
        Assert.Equal(TimeSpan.FromSeconds(2), clock.Elapsed);
    }

    [Theory]
    [InlineData(SimulatorFaultKind.DropResponse)]
    [InlineData(SimulatorFaultKind.CorruptResponse)]
    [InlineData(SimulatorFaultKind.DropRequestByte)]
    public async Task LostOrCorruptedBlock_ResyncsRewritesRegionAndVerifies(SimulatorFaultKind kind)
    {
        var options = new SimulatorOptions();
        options.Faults.Add(new SimulatorFault(kind, DeflData, 2));
        var (results, image, server) = await FlashWithAsync(options);
        await using (server)
        {
            var result = Assert.Single(results);
            Assert.Equal(Esp32RegionStatus.Written, result.Status);
            Assert.Equal(2, result.Attempts);
            Assert.Equal(image, server.Simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
        }
    }

    [Fact]
    public async Task ResponseDelayedPastTimeout_Retried()
    {
        var options = new SimulatorOptions();
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.DelayResponse, DeflData, 2, TimeSpan.FromSeconds(3.5)));
        var (results, image, server) = await FlashWithAsync(options, 40 * 1024);
        await using (server)
        {
            Assert.Equal(2, Assert.Single(results).Attempts);
            Assert.Equal(image, server.Simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
        }
    }

    [Fact]
    public async Task SilentWriteFailureOnce_DetectedByMd5AndRewritten()
    {
        var options = new SimulatorOptions();
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.SilentWriteFailure, 0x10, 1));
        var (results, image, server) = await FlashWithAsync(options);
        await using (server)
        {
            Assert.Equal(2, Assert.Single(results).Attempts);
            Assert.Equal(image, server.Simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
        }
    }

    [Fact]
    public async Task SilentWriteFailureAlways_Md5MismatchNamingRegionAndOffset_NoResult()
    {
        var options = new SimulatorOptions();
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.SilentWriteFailure, 0x10, 0));
        await using var server = new SimulatorServer(options);
        await using var flasher = await FlasherTests.ConnectAsync(server);

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => flasher.WriteAsync([new Esp32FlashRegion("nanoCLR", 0x10000, TestImages.FirmwareLike(32 * 1024, 12))], Token));

        Assert.Equal("Esp32Md5Mismatch", ex.ErrorId);
        Assert.Contains("'nanoCLR'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("0x10000", ex.Message, StringComparison.Ordinal);
        Assert.Equal(IoTHubErrorKind.WriteError, ex.Kind);
    }

    [Fact]
    public async Task EveryBlockResponseLost_TimeoutNamingRegion_Bounded()
    {
        var options = new SimulatorOptions();
        for (var i = 1; i <= 20; i++)
        {
            options.Faults.Add(new SimulatorFault(SimulatorFaultKind.DropResponse, DeflData, i));
        }

        await using var server = new SimulatorServer(options);
        await using var flasher = await FlasherTests.ConnectAsync(server, o => o.Retries = 2);

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => flasher.WriteAsync([new Esp32FlashRegion("app", 0x30000, TestImages.FirmwareLike(40 * 1024, 13))], Token));

        Assert.Equal("Esp32Timeout", ex.ErrorId);
        Assert.Contains("'app' at 0x30000", ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, server.Simulator.CountOf(0x10)); // the region was tried as often as Retries allows, then given up
    }

    [Fact]
    public async Task ConnectionDropsMidWrite_SyncLostNamingRegionAndOffset()
    {
        var options = new SimulatorOptions();
        options.Faults.Add(new SimulatorFault(SimulatorFaultKind.Disconnect, DeflData, 2));
        await using var server = new SimulatorServer(options);
        await using var flasher = await FlasherTests.ConnectAsync(server);

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => flasher.WriteAsync([new Esp32FlashRegion("nanoCLR", 0x10000, TestImages.FirmwareLike(96 * 1024, 14))], Token));

        Assert.Equal("Esp32SyncLost", ex.ErrorId);
        Assert.Contains("'nanoCLR' at 0x10000", ex.Message, StringComparison.Ordinal);
    }
}
