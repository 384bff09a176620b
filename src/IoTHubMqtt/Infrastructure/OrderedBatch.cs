using System.Diagnostics;

namespace IoTHubMqtt.Infrastructure;

/// <summary>
/// Runs per-item async work with at most N at a time and hands the outcomes back in input order, so a cmdlet can
/// write results and errors on the pipeline thread in the order the items came (PSResourceGet's phase pattern).
/// </summary>
internal sealed class OrderedBatch<T>(int throttleLimit) : IDisposable
{
    private readonly SemaphoreSlim gate = new(throttleLimit, throttleLimit);
    private readonly Queue<Item> pending = new();
    private readonly Stopwatch clock = Stopwatch.StartNew();

    internal sealed record Item(int Index, object Target, Task<(T? Value, Exception? Error)> Outcome);

    public int Added { get; private set; }

    public int Completed { get; private set; }

    /// <summary>Items finished per second so far.</summary>
    public double Rate => Completed / Math.Max(0.001, clock.Elapsed.TotalSeconds);

    public void Add(object target, Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        pending.Enqueue(new Item(++Added, target, RunAsync(work, cancellationToken)));
    }

    /// <summary>An item that failed before any work (a bad input row): it keeps its place in the order.</summary>
    public void AddFailed(object target, Exception error) =>
        pending.Enqueue(new Item(++Added, target, Task.FromResult<(T?, Exception?)>((default, error))));

    /// <summary>Outcomes at the head of the order that are ready now.</summary>
    public IEnumerable<Item> TakeReady()
    {
        while (pending.Count > 0 && pending.Peek().Outcome.IsCompleted)
        {
            Completed++;
            yield return pending.Dequeue();
        }
    }

    /// <summary>The next outcome in order, or null when none is left; its task may still be running.</summary>
    public Item? PeekNext() => pending.Count > 0 ? pending.Peek() : null;

    private async Task<(T? Value, Exception? Error)> RunAsync(Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        try
        {
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex)
        {
            return (default, ex);
        }

        try
        {
            return (await work(cancellationToken).ConfigureAwait(false), null);
        }
        catch (Exception ex)
        {
            return (default, ex);
        }
        finally
        {
            gate.Release();
        }
    }

    public void Dispose() => gate.Dispose();
}
