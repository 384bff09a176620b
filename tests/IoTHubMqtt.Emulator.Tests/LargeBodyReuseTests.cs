using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// Large telemetry bodies (16 KB and more) the log lets go without a reader ever having them are used again for the next
/// ones (each would otherwise come from memory the collector has just returned to the system, faulting in page by
/// page); a body a reader was handed is never touched again, and a reused array carries the new body whole.
/// </summary>
public sealed class LargeBodyReuseTests
{
    private const int Large = 64 * 1024;

    private static TelemetryMessage Message(long sequence, byte[] body) => new()
    {
        SequenceNumber = sequence,
        DeviceId = "d",
        EnqueuedTimeUtc = DateTime.UtcNow,
        Body = body,
        Properties = new Dictionary<string, string>(),
        SystemProperties = new Dictionary<string, string>(),
    };

    private static byte[] Filled(LargeBodyPool pool, int length, byte value)
    {
        var body = pool.Rent(length);
        Array.Fill(body, value);
        return body;
    }

    [Fact]
    public void ABodyTheLogLetsGoUnread_ServesTheNextLargeBody()
    {
        var pool = new LargeBodyPool();
        var log = new TelemetryLog(1, _ => 0, bodies: pool);
        var first = Filled(pool, Large, 1);
        log.Append(seq => Message(seq, first));
        log.Append(seq => Message(seq, Filled(pool, Large, 2))); // the retention of one lets the first go

        Assert.Equal(Large, pool.PooledBytes);
        Assert.Same(first, pool.Rent(Large));
        Assert.Equal(0, pool.PooledBytes);
    }

    [Fact]
    public async Task ABodyAReaderWasHanded_IsNeverReused()
    {
        var ct = TestContext.Current.CancellationToken;
        var pool = new LargeBodyPool();
        var log = new TelemetryLog(1, _ => 0, bodies: pool);
        var readOverRest = Filled(pool, Large, 1);
        log.Append(seq => Message(seq, readOverRest));
        Assert.Same(readOverRest, Assert.Single(await log.ReadAsync(0, 10, null, TimeSpan.Zero, ct)).Body);
        var readOverAmqp = Filled(pool, Large, 2);
        log.Append(seq => Message(seq, readOverAmqp));
        Assert.Same(readOverAmqp, Assert.Single(await log.ReadPartitionAsync(0, 0, 10, TimeSpan.Zero, ct)).Body);

        log.Append(seq => Message(seq, Filled(pool, Large, 3)));
        log.Append(seq => Message(seq, Filled(pool, Large, 4)));

        Assert.Equal(Large, pool.PooledBytes); // only the third, never read
        Assert.All(readOverRest, b => Assert.Equal(1, b));
        Assert.All(readOverAmqp, b => Assert.Equal(2, b));
        var next = pool.Rent(Large);
        Assert.NotSame(readOverRest, next);
        Assert.NotSame(readOverAmqp, next);
    }

    [Fact]
    public void SmallBodies_AndBodiesBeyondTheBound_AreLeftToTheCollector()
    {
        var pool = new LargeBodyPool(maxPooledBytes: 2 * Large);
        var log = new TelemetryLog(1, _ => 0, bodies: pool);
        log.Append(seq => Message(seq, new byte[1024]));
        foreach (var body in Enumerable.Range(0, 5).Select(_ => pool.Rent(Large)).ToList())
        {
            log.Append(seq => Message(seq, body));
        }

        Assert.Equal(2 * Large, pool.PooledBytes); // four let go, two kept; the small one never
        Assert.Equal(1024, pool.Rent(1024).Length);
        Assert.Equal(2 * Large, pool.PooledBytes);
    }

    [Fact]
    public async Task OverMqtt_BodiesInReusedArrays_ArriveWhole()
    {
        // A device sends large bodies past a retention of two; the reader then gets the last two exactly as sent, though
        // they were read into the arrays of the ones before.
        var ct = TestContext.Current.CancellationToken;
        await using var hub = EmulatorFixture.Start(o => o.TelemetryRetention = 2);
        await using var device = await hub.ConnectNewDeviceAsync("large");
        var sent = Enumerable.Range(0, 6).Select(i => Enumerable.Range(0, 20_000 + (i % 2)).Select(b => (byte)(b * (i + 3))).ToArray()).ToList();
        foreach (var body in sent)
        {
            await device.PublishAsync($"devices/{device.DeviceId}/messages/events/", body, cancellationToken: ct);
        }

        var kept = await hub.Emulator.Hub.Telemetry.ReadAsync(0, 10, device.DeviceId, TimeSpan.Zero, ct);
        Assert.Equal(2, kept.Count);
        Assert.Equal(sent[4], kept[0].Body);
        Assert.Equal(sent[5], kept[1].Body);
        Assert.True(hub.Emulator.Hub.Bodies.PooledBytes > 0, "the bodies let go unread were kept for reuse");
    }
}
