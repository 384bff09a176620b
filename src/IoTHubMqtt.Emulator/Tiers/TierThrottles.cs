using System.Collections.Concurrent;
using IoTHubMqtt.Emulator.Hub;

namespace IoTHubMqtt.Emulator.Tiers;

/// <summary>
/// The throttles of an emulated tier: one token bucket per operation class, holding one minute's worth of its rate (IoT Hub
/// applies its throttles "in minute ranges") and refilled continuously by the emulator's clock. A request takes as many
/// tokens as it costs (a bulk registry call one per device, a direct method one per 4 KB of payload); when they are not
/// there it is refused at once with 429 ThrottlingException and a Retry-After of the whole seconds until they will be, and
/// takes nothing. The hub's traffic shaping (a short queue before refusing) is not emulated: the emulator is the strict
/// reading, so a script that passes against it passes against the hub. Operations the tier does not offer (basic tiers:
/// cloud-to-device, twins, direct methods) are refused with 403 OperationNotAvailableInCurrentTier.
/// </summary>
internal sealed class TierThrottles
{
    private readonly TimeProvider time;
    private readonly Dictionary<TierOperation, Bucket?> buckets = [];
    private readonly ConcurrentDictionary<string, Bucket> dpsPolls = new(StringComparer.Ordinal);

    public TierThrottles(IoTHubTier tier, int units, TimeProvider time)
    {
        Tier = tier;
        Units = units;
        this.time = time;
        foreach (var operation in Enum.GetValues<TierOperation>())
        {
            var rate = TierQuotas.Rate(tier, units, operation);
            buckets[operation] = rate.Available ? new Bucket(rate.PerSecond, rate.PerSecond * 60, time) : null;
        }
    }

    public IoTHubTier Tier { get; }

    public int Units { get; }

    /// <summary>Requests refused with 429 so far, per operation class.</summary>
    public ConcurrentDictionary<TierOperation, int> Refused { get; } = new();

    /// <summary>Takes <paramref name="cost"/> tokens, or throws the hub's 429 (or 403 for an operation the tier lacks).</summary>
    public void Take(TierOperation operation, double cost = 1)
    {
        if (TryTake(operation, cost, out var retryAfter) is { } refusal)
        {
            throw refusal == Refusal.NotAvailable ? NotAvailable(operation) : HubError.Throttled(retryAfter);
        }
    }

    /// <summary>Null when taken; otherwise why not, with the seconds to wait when throttled.</summary>
    public Refusal? TryTake(TierOperation operation, double cost, out int retryAfterSeconds)
    {
        retryAfterSeconds = 0;
        var bucket = buckets[operation];
        if (bucket is null)
        {
            return Refusal.NotAvailable;
        }

        if (bucket.TryTake(cost, out var wait))
        {
            return null;
        }

        Refused.AddOrUpdate(operation, 1, (_, n) => n + 1);
        retryAfterSeconds = Seconds(wait);
        return Refusal.Throttled;
    }

    /// <summary>DPS: a registration may poll its operation status 5 times in 10 seconds.</summary>
    public bool TryPoll(string registrationId, out int retryAfterSeconds)
    {
        var bucket = dpsPolls.GetOrAdd(registrationId, _ => new Bucket(TierQuotas.DpsPollsPerWindow / TierQuotas.DpsPollWindow.TotalSeconds, TierQuotas.DpsPollsPerWindow, time));
        if (bucket.TryTake(1, out var wait))
        {
            retryAfterSeconds = 0;
            return true;
        }

        retryAfterSeconds = Seconds(wait);
        return false;
    }

    public static HubError NotAvailable(TierOperation operation) =>
        new(403, 403010, "OperationNotAvailableInCurrentTier", $"{operation} operations are not available in the basic tiers of IoT Hub.");

    private static int Seconds(TimeSpan wait) => Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds - 1e-9));

    internal enum Refusal
    {
        Throttled,
        NotAvailable,
    }

    /// <summary>A token bucket: <c>capacity</c> tokens, refilled at <c>rate</c> a second; starts full.</summary>
    private sealed class Bucket
    {
        private readonly object gate = new();
        private readonly double rate;
        private readonly double capacity;
        private readonly TimeProvider time;
        private double tokens;
        private long last;

        public Bucket(double rate, double capacity, TimeProvider time)
        {
            this.rate = rate;
            this.capacity = capacity;
            this.time = time;
            tokens = capacity;
            last = time.GetTimestamp();
        }

        public bool TryTake(double cost, out TimeSpan wait)
        {
            lock (gate)
            {
                var now = time.GetTimestamp();
                tokens = Math.Min(capacity, tokens + (time.GetElapsedTime(last, now).TotalSeconds * rate));
                last = now;
                if (tokens + 1e-9 >= cost)
                {
                    tokens = Math.Max(0, tokens - cost);
                    wait = TimeSpan.Zero;
                    return true;
                }

                // What is missing, at the refill rate; a cost above the capacity waits for a full bucket.
                wait = TimeSpan.FromSeconds((Math.Min(cost, capacity) - tokens) / rate);
                return false;
            }
        }
    }
}
