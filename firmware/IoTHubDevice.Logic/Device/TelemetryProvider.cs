using IoTHubDevice.Logic.Json;

namespace IoTHubDevice.Logic.Device
{
    /// <summary>Builds the body of telemetry message number <paramref name="sequence"/> (sensor readings on a real board).</summary>
    public delegate JsonObject TelemetryProvider(long sequence);

    /// <summary>Called for each cloud-to-device message after it was acknowledged.</summary>
    public delegate void CloudMessageHandler(byte[] body, Mqtt.PropertyBag properties);
}
