namespace IoTHubMqtt.Emulator;

/// <summary>
/// An IoT Hub pricing tier whose operation throttles the emulator applies (<see cref="IoTHubEmulatorOptions.Tier"/>):
/// F1 (free), B1, B2, B3 (basic: no cloud-to-device messages, twins, direct methods or device jobs), S1, S2, S3 (standard).
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling
/// </summary>
public enum IoTHubTier
{
    F1,
    B1,
    B2,
    B3,
    S1,
    S2,
    S3,
}
