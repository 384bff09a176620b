namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// Wakes readers that wait for something to arrive in a collection guarded by its owner's lock. The signal exists only
/// while someone waits; <see cref="TakeWaiters"/> is called under the owner's lock and the result set outside it.
/// </summary>
internal sealed class Arrivals(TimeProvider time)
{
    private TaskCompletionSource? waiting;

    /// <summary>Under the owner's lock: the waiters to wake (null when none wait); call <c>TrySetResult</c> on it after the lock.</summary>
    public TaskCompletionSource? TakeWaiters()
    {
        var signal = waiting;
        waiting = null;
        return signal;
    }

    /// <summary>
    /// Runs <paramref name="take"/> under <paramref name="gate"/> until it finds something or <paramref name="wait"/> has
    /// passed on the hub's clock (then: empty), sleeping until the next arrival in between.
    /// </summary>
    public async Task<List<T>> WaitForAsync<T>(object gate, Func<List<T>> take, TimeSpan wait, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + wait;
        while (true)
        {
            Task signal;
            lock (gate)
            {
                var found = take();
                if (found.Count > 0)
                {
                    return found;
                }

                signal = (waiting ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }

            var left = deadline - time.GetUtcNow();
            if (left <= TimeSpan.Zero)
            {
                return [];
            }

            try
            {
                await signal.WaitAsync(left, time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return [];
            }
        }
    }
}
