using System;
using System.Security.Cryptography.X509Certificates;
using IoTHubDevice.Logic.Mqtt;
using nanoFramework.M2Mqtt;
using nanoFramework.M2Mqtt.Messages;

namespace IoTHubDevice.Platform
{
    /// <summary>The device logic's MQTT transport over the nanoFramework M2Mqtt client (MQTT 3.1.1 over TLS 1.2).</summary>
    internal sealed class M2MqttTransport : IMqttTransport
    {
        private MqttClient client;

        public event MqttMessageHandler MessageReceived;

        public bool IsConnected
        {
            get { return client != null && client.IsConnected; }
        }

        public int Connect(string host, int port, string caCertificatePem, string clientId, string username, string password, bool cleanSession, int keepAliveSeconds)
        {
            Disconnect();
            try
            {
                var ca = new X509Certificate(caCertificatePem != null ? caCertificatePem : AzureRootCertificates.Pem);
                client = new MqttClient(host, port, true, ca, null, MqttSslProtocols.TLSv1_2);
                client.ProtocolVersion = MqttProtocolVersion.Version_3_1_1;
                client.MqttMsgPublishReceived += OnPublishReceived;
                var code = client.Connect(clientId, username, password, false, MqttQoSLevel.AtMostOnce, false, null, null, cleanSession, (ushort)keepAliveSeconds);
                return code == MqttReasonCode.Success ? 0 : (int)code;
            }
            catch (Exception)
            {
                // DNS, socket or TLS failure: no CONNACK. The message may hold host details only, never the password.
                client = null;
                return -1;
            }
        }

        public bool Subscribe(string[] topics)
        {
            try
            {
                var qos = new MqttQoSLevel[topics.Length];
                for (var i = 0; i < qos.Length; i++)
                {
                    qos[i] = MqttQoSLevel.AtLeastOnce;
                }

                client.Subscribe(topics, qos);
                return true;
            }
            catch (Exception)
            {
                return false;
            }
        }

        public bool Publish(string topic, byte[] payload, int qos)
        {
            try
            {
                client.Publish(topic, payload, null, null, qos == 0 ? MqttQoSLevel.AtMostOnce : MqttQoSLevel.AtLeastOnce, false);
                return true;
            }
            catch (Exception)
            {
                return false;
            }
        }

        public void Disconnect()
        {
            var current = client;
            client = null;
            if (current == null)
            {
                return;
            }

            current.MqttMsgPublishReceived -= OnPublishReceived;
            try
            {
                if (current.IsConnected)
                {
                    current.Disconnect();
                }

                current.Close();
            }
            catch (Exception)
            {
                // already gone
            }
        }

        private void OnPublishReceived(object sender, MqttMsgPublishEventArgs e)
        {
            var handler = MessageReceived;
            if (handler != null)
            {
                handler(e.Topic, e.Message);
            }
        }
    }
}
