namespace IoTHubMqtt.Core.Mqtt;

public enum IoTHubConnectionState
{
    Disconnected,
    Connecting,
    Connected,
    Reconnecting,

    /// <summary>Closed for good: disposed, disconnected by the user, or a credential that can no longer work.</summary>
    Closed,
}
