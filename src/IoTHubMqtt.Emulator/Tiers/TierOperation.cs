namespace IoTHubMqtt.Emulator.Tiers;

/// <summary>The classes of operation IoT Hub and DPS throttle separately.</summary>
internal enum TierOperation
{
    /// <summary>Identity registry operations (create, retrieve, list, update, delete), one per device of a bulk call.</summary>
    Registry,

    /// <summary>New device connections (the rate of new connections, not their number).</summary>
    DeviceConnection,

    /// <summary>Device-to-cloud sends.</summary>
    DeviceToCloud,

    /// <summary>Cloud-to-device sends (standard tiers).</summary>
    CloudToDevice,

    /// <summary>Direct methods, metered in 4 KB units of request payload (standard tiers).</summary>
    DirectMethods,

    /// <summary>Twin reads, by devices and by the service (standard tiers).</summary>
    TwinReads,

    /// <summary>Twin updates, by devices and by the service (standard tiers).</summary>
    TwinUpdates,

    /// <summary>Jobs operations: create, get, list, cancel (import/export jobs included).</summary>
    Jobs,

    /// <summary>Queries.</summary>
    Queries,

    /// <summary>DPS device registrations (register requests).</summary>
    DpsRegistrations,

    /// <summary>DPS service operations (enrollments).</summary>
    DpsOperations,
}
