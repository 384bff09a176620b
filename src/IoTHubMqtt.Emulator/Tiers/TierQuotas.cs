namespace IoTHubMqtt.Emulator.Tiers;

/// <summary>One throttle: a rate per second for the whole hub (units already counted in), or not offered in the tier.</summary>
internal sealed record TierRate(double PerSecond, bool Available = true)
{
    public static readonly TierRate NotAvailable = new(0, Available: false);
}

/// <summary>
/// The documented per-tier operation throttles of IoT Hub and the rate limits of DPS, as rates for a hub of a tier and a
/// number of units. Values from Microsoft Learn, "IoT Hub quotas and throttling" (iot-hub-devguide-quotas-throttling, the
/// "Basic and standard tier operations" and "Standard tier operations" tables) and "Azure IoT Hub Device Provisioning
/// Service quotas and limits" (about-iot-dps#quotas-and-limits):
/// https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling
/// https://learn.microsoft.com/azure/iot-dps/about-iot-dps#quotas-and-limits
/// </summary>
internal static class TierQuotas
{
    /// <summary>The most units a hub of the tier can have (free: 1; B1, S1, B2, S2: 200; B3, S3: 10).</summary>
    public static int MaxUnits(IoTHubTier tier) => tier switch
    {
        IoTHubTier.F1 => 1,
        IoTHubTier.B3 or IoTHubTier.S3 => 10,
        _ => 200,
    };

    public static bool IsBasic(IoTHubTier tier) => tier is IoTHubTier.B1 or IoTHubTier.B2 or IoTHubTier.B3;

    /// <summary>The rate of an operation class for <paramref name="units"/> units of <paramref name="tier"/>.</summary>
    public static TierRate Rate(IoTHubTier tier, int units, TierOperation operation)
    {
        // "Free, B1 and S1" / "B2 and S2" / "B3 and S3" columns of the basic-and-standard table; "Free and S1" / "S2" / "S3"
        // columns of the standard-only table (not available in basic tiers).
        var small = tier is IoTHubTier.F1 or IoTHubTier.B1 or IoTHubTier.S1;
        var large = tier is IoTHubTier.B3 or IoTHubTier.S3;
        var standardOnly = IsBasic(tier) ? TierRate.NotAvailable : null;
        static TierRate PerMinute(double perUnit, int units) => new(perUnit * units / 60.0);
        return operation switch
        {
            // 1.67/sec/unit (100/min/unit); B3, S3: 83.33/sec/unit (5,000/min/unit). Bulk calls count each device.
            TierOperation.Registry => PerMinute(large ? 5000 : 100, units),
            // Free, B1, S1: higher of 100/sec or 12/sec/unit; B2, S2: 120/sec/unit; B3, S3: 6,000/sec/unit.
            TierOperation.DeviceConnection or TierOperation.DeviceToCloud => new(small ? Math.Max(100, 12.0 * units) : large ? 6000.0 * units : 120.0 * units),
            // 1.67 send operations/sec/unit (100/min/unit); S3: 83.33/sec/unit (5,000/min/unit).
            TierOperation.CloudToDevice => standardOnly ?? PerMinute(large ? 5000 : 100, units),
            // 160 KB/sec/unit; S2: 480 KB/sec/unit; S3: 24 MB/sec/unit; metered in 4 KB units of request payload.
            TierOperation.DirectMethods => standardOnly ?? new((small ? 160.0 : large ? 24.0 * 1024 : 480.0) / 4 * units),
            // Free, S1: 100/sec; S2: higher of 100/sec or 10/sec/unit; S3: 500/sec/unit.
            TierOperation.TwinReads => standardOnly ?? new(small ? 100 : large ? 500.0 * units : Math.Max(100, 10.0 * units)),
            // Free, S1: 50/sec; S2: higher of 50/sec or 5/sec/unit; S3: 250/sec/unit.
            TierOperation.TwinUpdates => standardOnly ?? new(small ? 50 : large ? 250.0 * units : Math.Max(50, 5.0 * units)),
            // Jobs operations (create, update, list, delete): 1.67/sec/unit (100/min/unit); S3: 83.33/sec/unit. Import and
            // export jobs exist in every tier, so basic hubs meter them the same way.
            TierOperation.Jobs => PerMinute(large ? 5000 : 100, units),
            // Queries: 20/min/unit; B3, S3: 1,000/min/unit.
            TierOperation.Queries => PerMinute(large ? 1000 : 20, units),
            // DPS: device registrations 1,000/min/service; operations 1,000/min/service (one DPS unit).
            TierOperation.DpsRegistrations or TierOperation.DpsOperations => PerMinute(1000, 1),
            _ => throw new ArgumentOutOfRangeException(nameof(operation)),
        };
    }

    /// <summary>DPS: a device may poll its registration's status 5 times in 10 seconds.</summary>
    public const int DpsPollsPerWindow = 5;

    public static readonly TimeSpan DpsPollWindow = TimeSpan.FromSeconds(10);

    /// <summary>Import and export jobs that may run at once, in every tier ("Other limits": 1).</summary>
    public const int MaxConcurrentImportExportJobs = 1;
}
