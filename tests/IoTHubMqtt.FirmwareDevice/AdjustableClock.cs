using IoTHubDevice.Logic.Device;
using IoTHubDevice.Logic.Platform;

namespace IoTHubMqtt.FirmwareDevice;

/// <summary>
/// The machine's clock as the board's SNTP-set clock, which a test can move forward (to reach a token renewal without waiting
/// 20 hours). Uptime stays real.
/// </summary>
public sealed class AdjustableClock : IClock
{
    private readonly SystemClock system = new();
    private long offsetSeconds;

    public long UnixTimeSeconds => system.UnixTimeSeconds + Interlocked.Read(ref offsetSeconds);

    public long UptimeMilliseconds => system.UptimeMilliseconds;

    /// <summary>Moves the wall clock forward by <paramref name="by"/>.</summary>
    public void Advance(TimeSpan by) => Interlocked.Add(ref offsetSeconds, (long)by.TotalSeconds);
}
