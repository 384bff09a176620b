namespace IoTHubMqtt.Esp32.Tests;

/// <summary>
/// A fake clock that jumps to each timer's due time as soon as a timer is made: every wait completes at once in real time,
/// and <see cref="Elapsed"/> is the sum of the waits, the time the same run would take on a real clock. For code paths that
/// wait without input (reset sequences, a board that never answers); timeouts fire at once, so it is not for paths where an
/// answer is expected.
/// </summary>
internal sealed class JumpingClock : TimeProvider
{
    private readonly DateTimeOffset start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private long ticks;

    public TimeSpan Elapsed => TimeSpan.FromTicks(Interlocked.Read(ref ticks));

    public override DateTimeOffset GetUtcNow() => start + Elapsed;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref ticks);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        if (dueTime == Timeout.InfiniteTimeSpan)
        {
            return new Timer();
        }

        Interlocked.Add(ref ticks, dueTime.Ticks);
        ThreadPool.UnsafeQueueUserWorkItem(_ => callback(state), null);
        return new Timer();
    }

    private sealed class Timer : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => true;

        public void Dispose()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
