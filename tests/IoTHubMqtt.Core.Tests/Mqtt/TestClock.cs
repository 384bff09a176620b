using System.Globalization;
using System.Text.RegularExpressions;
using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>Which clock a timing test runs on: the fake one it drives, or the machine's.</summary>
public enum ClockKind
{
    Fake,
    Real,
}

/// <summary>
/// The clock of a timing test. The same test body runs on a <see cref="FakeTimeProvider"/> that the test moves on
/// (deterministic, no waiting) and once more on the real clock (the client's own timers, short settings). Tests wait on
/// signals — a log line, a state change, an acknowledgement — never on the passing of time.
/// </summary>
internal sealed partial class TestClock
{
    private TestClock(FakeTimeProvider? fake)
    {
        Fake = fake;
        Provider = (TimeProvider?)fake ?? TimeProvider.System;
    }

    public FakeTimeProvider? Fake { get; }

    public TimeProvider Provider { get; }

    public bool IsFake => Fake is not null;

    public static TestClock Of(ClockKind kind) => kind == ClockKind.Fake ? new(new FakeTimeProvider(DateTimeOffset.UtcNow)) : new(null);

    /// <summary>On the fake clock, moves time on; on the real clock, nothing (time passes by itself).</summary>
    public void Advance(TimeSpan span) => Fake?.Advance(span);

    /// <summary>
    /// Until <paramref name="done"/> completes, answers every pause the client logs ("next attempt in X s") by moving
    /// the fake clock on by X; on the real clock, just waits for <paramref name="done"/>. Returns the pauses seen.
    /// </summary>
    public async Task<List<TimeSpan>> DriveBackoffAsync(TestLog log, Task done, int from = 0)
    {
        var pauses = new List<TimeSpan>();
        if (Fake is null)
        {
            // The client's own timers end its pauses.
            await done.WaitAsync(TimeSpan.FromMinutes(3), TestContext.Current.CancellationToken);
            return pauses;
        }

        var position = from;
        var idleSince = log.Lines.Count;
        var nudges = 0;
        while (!done.IsCompleted)
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            var next = log.WaitForMatchAsync(line => line.Contains("next attempt in", StringComparison.Ordinal), position, TimeSpan.FromMinutes(2), "next attempt in", stop.Token);
            var quiet = Task.Delay(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
            var first = await Task.WhenAny(done, next, quiet);
            if (first == quiet && !next.IsCompleted && !done.IsCompleted)
            {
                await stop.CancelAsync();
                await Task.WhenAny(next); // observed: cancelled
                nudges = log.Lines.Count == idleSince ? nudges + 1 : 1;
                if (nudges > 30)
                {
                    throw new TimeoutException($"The client announced no pause and did not finish. Last lines: {string.Join(" | ", log.Lines.TakeLast(15))}");
                }

                // Nothing announced for a while: the client may be waiting on one of its own timers (an operation
                // timeout noticing a silent connection). Let the fake clock move on a second, as time would.
                idleSince = log.Lines.Count;
                Fake.Advance(TimeSpan.FromSeconds(1));
                continue;
            }

            if (first == done)
            {
                await stop.CancelAsync();
                await Task.WhenAny(next); // observed: cancelled
                break;
            }

            var (index, line) = await next;
            position = index + 1;
            var pause = Pause(line);
            pauses.Add(pause);
            Fake.Advance(pause + TimeSpan.FromMilliseconds(1));
        }

        await done;
        return pauses;
    }

    /// <summary>The pause a log line announces ("next attempt in 1.234 s").</summary>
    public static TimeSpan Pause(string line) =>
        TimeSpan.FromSeconds(double.Parse(PauseText().Match(line).Groups[1].Value, CultureInfo.InvariantCulture));

    [GeneratedRegex(@"next attempt in ([0-9.]+) s")]
    private static partial Regex PauseText();

    public override string ToString() => IsFake ? "fake clock" : "real clock";
}
