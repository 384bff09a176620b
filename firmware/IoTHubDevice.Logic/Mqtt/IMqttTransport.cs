namespace IoTHubDevice.Logic.Mqtt
{
    /// <summary>Called by a transport for each incoming publish, on the transport's own thread.</summary>
    public delegate void MqttMessageHandler(string topic, byte[] payload);

    /// <summary>
    /// The MQTT 3.1.1 client the device logic drives: the nanoFramework M2Mqtt client on the board, MQTTnet on .NET.
    /// Calls are synchronous and made from one thread (the app loop); <see cref="MessageReceived"/> may fire on another.
    /// TLS is always on; <c>caCertificatePem</c> null means the roots the firmware trusts by default (the Azure roots on the board).
    /// </summary>
    public interface IMqttTransport
    {
        event MqttMessageHandler MessageReceived;

        bool IsConnected { get; }

        /// <summary>Opens TLS and sends CONNECT; returns the CONNACK return code (0 accepted, 1-5 refused) or -1 when the
        /// network or TLS failed before a CONNACK arrived.</summary>
        int Connect(string host, int port, string caCertificatePem, string clientId, string username, string password, bool cleanSession, int keepAliveSeconds);

        /// <summary>Subscribes with QoS 1 to each topic; false when the broker refused any.</summary>
        bool Subscribe(string[] topics);

        /// <summary>Publishes with QoS 0 or 1; false when it could not be sent.</summary>
        bool Publish(string topic, byte[] payload, int qos);

        void Disconnect();
    }
}
