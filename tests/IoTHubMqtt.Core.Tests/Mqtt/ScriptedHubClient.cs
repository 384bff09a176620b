using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>Device clients for the scripted hub: plain MQTT on loopback, the test's clock and log.</summary>
internal static class ScriptedHubClient
{
    public const string DeviceId = "scripted-device";

    public static IoTHubDeviceClient Create(ScriptedMqttHub hub, TestClock clock, TestLog log, Func<IoTHubDeviceClientOptions, IoTHubDeviceClientOptions>? configure = null)
    {
        var options = new IoTHubDeviceClientOptions
        {
            HostName = "scripted.azure-devices.net",
            ConnectHostName = "127.0.0.1",
            DeviceId = DeviceId,
            SharedAccessKey = Convert.ToBase64String(new byte[32]),
            Transport = IoTHubTransport.MqttNoTls,
            Port = hub.Port,
            OperationTimeout = TimeSpan.FromSeconds(30),
            ReconnectInitialDelay = TimeSpan.FromSeconds(1),
            ReconnectMaxDelay = TimeSpan.FromSeconds(60),
            TimeProvider = clock.Provider,
            Logger = log,
        };
        return new IoTHubDeviceClient(configure is null ? options : configure(options));
    }

    /// <summary>The body of telemetry message <paramref name="i"/>.</summary>
    public static TelemetryMessage Message(int i) => TelemetryMessage.FromText(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
