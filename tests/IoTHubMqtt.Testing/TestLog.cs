using IoTHubMqtt.Core.Diagnostics;

namespace IoTHubMqtt.Testing;

/// <summary>
/// A logger for tests: keeps every line (level, source, message) and lets a test wait for the next line that matches,
/// instead of sleeping. Waits are bounded by a real-time limit only as a safety net for a broken test.
/// </summary>
public sealed class TestLog : IIoTHubLogger
{
    private readonly object gate = new();
    private readonly List<string> lines = [];
    private readonly List<(int From, Func<string, bool> Match, TaskCompletionSource<(int Index, string Line)> Found)> waiters = [];

    public bool IsEnabled(IoTHubLogLevel level) => true;

    public void Publish(IoTHubLogLevel level, string source, string message, Exception? exception)
    {
        var line = $"{level} [{source}] {message}{(exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})")}";
        List<TaskCompletionSource<(int, string)>>? found = null;
        int index;
        lock (gate)
        {
            index = lines.Count;
            lines.Add(line);
            for (var i = waiters.Count - 1; i >= 0; i--)
            {
                if (waiters[i].From <= index && waiters[i].Match(line))
                {
                    (found ??= []).Add(waiters[i].Found);
                    waiters.RemoveAt(i);
                }
            }
        }

        found?.ForEach(f => f.TrySetResult((index, line)));
    }

    /// <summary>How many lines were logged so far (a position for <see cref="WaitForAsync"/>).</summary>
    public int Count
    {
        get
        {
            lock (gate)
            {
                return lines.Count;
            }
        }
    }

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (gate)
            {
                return [.. lines];
            }
        }
    }

    /// <summary>
    /// The first line at or after position <paramref name="from"/> that contains <paramref name="text"/>, and its
    /// position (the wait ends with the test).
    /// </summary>
    public Task<(int Index, string Line)> WaitForAsync(string text, int from = 0) =>
        WaitForMatchAsync(line => line.Contains(text, StringComparison.Ordinal), from, null, text, Xunit.TestContext.Current.CancellationToken);

    /// <summary>The first line at or after <paramref name="from"/> that <paramref name="match"/> accepts, within <paramref name="limit"/> (60 s).</summary>
    public async Task<(int Index, string Line)> WaitForMatchAsync(Func<string, bool> match, int from, TimeSpan? limit, string? what, CancellationToken cancellationToken)
    {
        var found = new TaskCompletionSource<(int Index, string Line)>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (gate)
        {
            for (var i = from; i < lines.Count; i++)
            {
                if (match(lines[i]))
                {
                    return (i, lines[i]);
                }
            }

            waiters.Add((from, match, found));
        }

        try
        {
            return await found.Task.WaitAsync(limit ?? TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"No log line {(what is null ? "matched" : $"contained '{what}'")} after position {from}. Last lines: {string.Join(" | ", Lines.TakeLast(15))}");
        }
    }

    public override string ToString() => string.Join(Environment.NewLine, Lines);
}
