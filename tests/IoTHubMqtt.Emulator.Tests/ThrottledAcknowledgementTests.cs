using System.Text;
using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// A device over its rate of telemetry is answered by closing its connection at the publish that went over, and every
/// publish the hub took before that one is acknowledged first: a device that sends a window at a time otherwise sends
/// what was taken again on its next connection, is throttled at the same point, and never gets further.
/// </summary>
public sealed class ThrottledAcknowledgementTests
{
    [Fact]
    public async Task ABurstOverTheRate_HasWhatWasTakenAcknowledged_ThenTheConnectionCloses()
    {
        // The hub's clock stands still: the bucket holds its five however slowly the burst is read (no refill meanwhile).
        await using var hub = EmulatorFixture.Start(o =>
        {
            o.DeviceOperationsPerSecond = 5;
            o.TimeProvider = new FakeTimeProvider(DateTimeOffset.UtcNow);
        });
        var (id, key) = hub.CreateDevice("throttled");
        await using var device = await StrictnessTests.RawDevice.ConnectAsync(hub.Emulator, id, key);
        var topic = Encoding.UTF8.GetBytes($"devices/{id}/messages/events/");
        var burst = Enumerable.Range(1, 10).SelectMany(i => StrictnessTests.Publish(topic, Encoding.UTF8.GetBytes($"m{i}"), (ushort)i)).ToArray();

        await device.SendAsync(burst); // ten together, as a device sends its window; five a second are taken
        var answer = await device.ReadAsync(4 * 10); // what comes before the connection closes

        // The five taken, each with its PUBACK in order; nothing for the sixth (over the rate) or after it.
        Assert.Equal(Enumerable.Range(1, 5).SelectMany(i => new byte[] { 0x40, 0x02, 0x00, (byte)i }), answer);
        Assert.Equal(5, (await hub.Emulator.Hub.Telemetry.ReadAsync(0, 100, id, TimeSpan.Zero, TestContext.Current.CancellationToken)).Count);
    }
}
