using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>
/// The emulator throttling twin requests (its DeviceOperationsPerSecond fault, answered 429): the client tries again
/// until they succeed. The pauses themselves are tested on a fake clock in SessionTimingTests; throttled telemetry in
/// DeviceClientReliabilityTests.
/// </summary>
public sealed class DeviceClientThrottlingTests
{
    [Fact]
    public async Task ThrottledTwinRequests_Answered429_AreRetriedUntilTheySucceed()
    {
        await using var hub = EmulatorFixture.Start(o => o.DeviceOperationsPerSecond = 2);
        var (id, key) = hub.CreateDevice();
        var log = new TestLog();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with { OperationTimeout = TimeSpan.FromSeconds(30) }, log);
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var patches = Enumerable.Range(0, 8).Select(i => client.UpdateReportedPropertiesAsync(new JsonObject { [$"p{i}"] = i }, TestContext.Current.CancellationToken)).ToList();
        var versions = await Task.WhenAll(patches).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        var twin = await client.GetTwinAsync(TestContext.Current.CancellationToken);

        Assert.Contains(log.Lines, line => line.Contains("answered 429", StringComparison.Ordinal));
        Assert.Equal(8, versions.Distinct().Count());
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(i, twin.Reported[$"p{i}"]!.GetValue<int>());
        }
    }
}
