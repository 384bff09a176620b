namespace IoTHubMqtt.Core.Mqtt;

/// <summary>How a device reaches the hub.</summary>
public enum IoTHubTransport
{
    /// <summary>MQTT over TLS, port 8883.</summary>
    Mqtt,

    /// <summary>MQTT over secure WebSockets, port 443, path <c>/$iothub/websocket</c> (through proxies and firewalls).</summary>
    WebSocket,

    /// <summary>MQTT over plain TCP, no TLS: only for the local emulator's debug endpoint.</summary>
    MqttNoTls,
}
