using System.Management.Automation;

namespace IoTHubMqtt.Infrastructure;

/// <summary>
/// The progress bar of a cmdlet that knows how many items it is given: "N of T done (R/s)", written at most five times a
/// second, and completed at the end. Nothing is written while the total is unknown (0).
/// </summary>
internal sealed class CountProgress(int activityId, string activity, string done, string waiting, string rate)
{
    private readonly long started = Environment.TickCount64;
    private long lastWritten;

    /// <summary>How many items there are; 0 while unknown.</summary>
    public long Total { get; set; }

    /// <summary>The progress record to write when one is due (always when <paramref name="force"/>, else every 200 ms), or null.</summary>
    public ProgressRecord? Next(long completed, long inFlight, bool force)
    {
        if (Total <= 0 || !force && Environment.TickCount64 - lastWritten < 200)
        {
            return null;
        }

        lastWritten = Environment.TickCount64;
        var seconds = Math.Max(0.001, (lastWritten - started) / 1000.0);
        return new ProgressRecord(activityId, activity, $"{completed} of {Total} {done} ({completed / seconds:0} {rate})")
        {
            PercentComplete = (int)Math.Min(100, 100 * completed / Total),
            CurrentOperation = $"{inFlight} {waiting}",
        };
    }

    /// <summary>The record that ends the bar, or null when none was shown.</summary>
    public ProgressRecord? Completed() =>
        Total > 0 ? new ProgressRecord(activityId, activity, "Done") { RecordType = ProgressRecordType.Completed } : null;
}
