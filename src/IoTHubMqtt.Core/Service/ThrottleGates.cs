namespace IoTHubMqtt.Core.Service;

/// <summary>
/// One wait per class of service operation that the hub throttles separately (IoT Hub quotas and throttling: identity
/// registry operations, twin reads and updates, direct methods, queries, jobs). A 429 answer closes its class's gate
/// for the Retry-After; requests of that class wait at the gate instead of each meeting its own 429.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling
/// </summary>
internal sealed class ThrottleGates(TimeProvider time)
{
    public ThrottleGate Registry { get; } = new(time);

    public ThrottleGate Twins { get; } = new(time);

    public ThrottleGate Methods { get; } = new(time);

    public ThrottleGate Queries { get; } = new(time);

    public ThrottleGate Jobs { get; } = new(time);

    public ThrottleGate Other { get; } = new(time);

    /// <summary>The gate of a REST path (relative, without the api-version).</summary>
    public ThrottleGate For(string pathAndQuery)
    {
        var path = pathAndQuery.Split('?')[0];
        return path switch
        {
            "devices/query" => Queries,
            _ when path.StartsWith("devices", StringComparison.Ordinal) => Registry,
            _ when path.StartsWith("twins/", StringComparison.Ordinal) && path.EndsWith("/methods", StringComparison.Ordinal) => Methods,
            _ when path.StartsWith("twins/", StringComparison.Ordinal) => Twins,
            _ when path.StartsWith("jobs", StringComparison.Ordinal) => Jobs,
            _ => Other,
        };
    }
}

/// <summary>
/// A gate that is open, or closed until a time of the given clock: callers that share it pace themselves together after
/// a throttling answer (the Retry-After of one applies to all).
/// </summary>
public sealed class ThrottleGate(TimeProvider time)
{
    private readonly object gate = new();
    private DateTimeOffset closedUntil;

    /// <summary>Until when the gate is closed, or null when it is open.</summary>
    public DateTimeOffset? ClosedUntil
    {
        get
        {
            lock (gate)
            {
                return closedUntil > time.GetUtcNow() ? closedUntil : null;
            }
        }
    }

    /// <summary>Closes the gate for <paramref name="wait"/> from now (never shortens an earlier closing).</summary>
    public void CloseFor(TimeSpan wait)
    {
        var until = time.GetUtcNow() + wait;
        lock (gate)
        {
            if (until > closedUntil)
            {
                closedUntil = until;
            }
        }
    }

    /// <summary>Returns when the gate is open.</summary>
    public async Task WaitAsync(CancellationToken cancellationToken = default)
    {
        while (ClosedUntil is { } until)
        {
            var wait = until - time.GetUtcNow();
            if (wait <= TimeSpan.Zero)
            {
                continue;
            }

            var opened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var timer = time.CreateTimer(_ => opened.TrySetResult(), null, wait, Timeout.InfiniteTimeSpan);
            if (time.GetUtcNow() >= until)
            {
                continue; // the clock moved on while the timer was being made: the wait is over
            }

            using var registration = cancellationToken.Register(() => opened.TrySetCanceled(cancellationToken));
            await opened.Task.ConfigureAwait(false);
        }
    }
}
