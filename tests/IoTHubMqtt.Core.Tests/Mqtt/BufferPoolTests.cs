using IoTHubMqtt.Core.Mqtt;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>
/// The pool of telemetry body buffers: a burst larger than its minimum (many devices sending large messages at once) is
/// reused whole on the next burst instead of being allocated again, and trimming gives the surplus back.
/// </summary>
public sealed class BufferPoolTests
{
    private const int Size = 64 * 1024;

    [Fact]
    public void ABurstAboveTheMinimum_IsReusedWhole()
    {
        var pool = new BufferPool();
        var count = (int)(2 * BufferPool.MinimumKeptBytes / Size); // 64 MB of 64 KB bodies in flight at once
        var first = Enumerable.Range(0, count).Select(_ => pool.Rent(Size)).ToList();
        first.ForEach(pool.Return);

        var second = Enumerable.Range(0, count).Select(_ => pool.Rent(Size)).ToList();

        Assert.Equal(count, second.Intersect(first, ReferenceEqualityComparer.Instance).Count());
        Assert.Equal(0, pool.KeptBytes);
    }

    [Fact]
    public void Trim_KeepsTheMinimum_AndForgetsThePastDemand()
    {
        var pool = new BufferPool();
        var count = (int)(2 * BufferPool.MinimumKeptBytes / Size);
        var burst = Enumerable.Range(0, count).Select(_ => pool.Rent(Size)).ToList();
        burst.ForEach(pool.Return);
        Assert.Equal(2 * BufferPool.MinimumKeptBytes, pool.KeptBytes);

        pool.Trim();

        Assert.Equal(BufferPool.MinimumKeptBytes, pool.KeptBytes);
        var again = Enumerable.Range(0, count).Select(_ => pool.Rent(Size)).ToList();
        again.ForEach(pool.Return); // half came from the pool, so only half was needed anew: that much more is kept
        Assert.Equal(BufferPool.MinimumKeptBytes, pool.KeptBytes);
    }

    [Fact]
    public void WhatIsKept_NeverExceedsTheMaximum()
    {
        var pool = new BufferPool();
        var size = 256 * 1024;
        var count = (int)(BufferPool.MaximumKeptBytes / size) + 16;
        var burst = Enumerable.Range(0, count).Select(_ => pool.Rent(size)).ToList();

        burst.ForEach(pool.Return);

        Assert.Equal(BufferPool.MaximumKeptBytes, pool.KeptBytes);
    }

    [Fact]
    public void SmallBodies_AreNotPooled()
    {
        var pool = new BufferPool();
        var small = pool.Rent(100);

        pool.Return(small);

        Assert.Equal(100, small.Length);
        Assert.Equal(0, pool.KeptBytes);
    }
}
