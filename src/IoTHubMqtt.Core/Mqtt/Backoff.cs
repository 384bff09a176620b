namespace IoTHubMqtt.Core.Mqtt;

/// <summary>Exponential backoff with full jitter, capped: delay n = random(0.5, 1.0) × min(cap, initial × 2^n).</summary>
public sealed class Backoff(TimeSpan initial, TimeSpan maximum)
{
    private int attempt;

    public static Backoff Default => new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60));

    public int Attempt => attempt;

    public TimeSpan Next()
    {
        var exponent = Math.Min(attempt++, 30);
        var ceiling = Math.Min(maximum.TotalMilliseconds, initial.TotalMilliseconds * Math.Pow(2, exponent));
        return TimeSpan.FromMilliseconds(ceiling * (0.5 + (Random.Shared.NextDouble() * 0.5)));
    }

    public void Reset() => attempt = 0;
}
