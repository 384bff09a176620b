namespace IoTHubMqtt.Testing;

/// <summary>
/// Waits for something another party does in its own time (a hub records a connection just after its CONNACK, a queue
/// drains after the PUBACK) by asking again every few milliseconds. The bound is a guard against a hang, not a measure:
/// generous enough that a slow, shared machine never fails a test that would pass on a quiet one.
/// </summary>
public static class Eventually
{
    /// <summary>How long a condition is given before the test fails as hung.</summary>
    public static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(2);

    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(50);

    /// <summary>Returns once <paramref name="condition"/> holds; throws <see cref="TimeoutException"/> naming <paramref name="what"/> after <see cref="HangGuard"/>.</summary>
    public static Task TrueAsync(Func<bool> condition, string what = "the condition", CancellationToken cancellationToken = default) =>
        ValueAsync(() => Task.FromResult(condition()), done => done, what, cancellationToken);

    /// <summary>Returns once the asynchronous <paramref name="condition"/> holds (see <see cref="TrueAsync(Func{bool}, string, CancellationToken)"/>).</summary>
    public static Task TrueAsync(Func<Task<bool>> condition, string what = "the condition", CancellationToken cancellationToken = default) =>
        ValueAsync(condition, done => done, what, cancellationToken);

    /// <summary>Asks <paramref name="probe"/> until its answer satisfies <paramref name="done"/>, and returns that answer.</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what = "the condition", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(done);
        var deadline = DateTime.UtcNow + HangGuard;
        while (true)
        {
            var value = await probe().ConfigureAwait(false);
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException($"{what} did not come true within {HangGuard.TotalMinutes:0} minutes (a guard against a hang); the last answer was: {value}.");
            }

            await Task.Delay(Interval, cancellationToken).ConfigureAwait(false);
        }
    }
}
