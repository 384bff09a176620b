using MQTTnet;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// Cloud-to-device messages as they arrive on <c>devices/{id}/messages/devicebound/#</c>. Each stays unacknowledged
/// until the application completes it (<see cref="CloudToDeviceMessage.CompleteAsync"/>, a PUBACK): the hub keeps it
/// locked meanwhile and delivers it again after a reconnect if it was never completed. Over MQTT a message cannot be
/// abandoned or rejected. See https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub
/// </summary>
public sealed class CloudToDeviceInbox
{
    private readonly DeviceTopics topics;
    private readonly TimeProvider time;
    private readonly Inbox<CloudToDeviceMessage> inbox;

    internal CloudToDeviceInbox(DeviceTopics topics, TimeProvider time)
    {
        this.topics = topics;
        this.time = time;
        inbox = new Inbox<CloudToDeviceMessage>(time);
    }

    /// <summary>Waits for the next message; null when none arrives within <paramref name="timeout"/> or the client is closed.</summary>
    public Task<CloudToDeviceMessage?> ReceiveAsync(TimeSpan? timeout, CancellationToken cancellationToken = default) =>
        inbox.ReceiveAsync(timeout, cancellationToken);

    /// <summary>Takes the message if it is a C2D message (its PUBACK then waits for the application).</summary>
    internal bool TryAccept(MqttApplicationMessageReceivedEventArgs e, byte[] payload)
    {
        var topic = e.ApplicationMessage.Topic;
        if (!topics.IsCloudToDevice(topic))
        {
            return false;
        }

        e.AutoAcknowledge = false;
        inbox.Post(new CloudToDeviceMessage(topic, payload, topics.CloudToDeviceProperties(topic), e.AcknowledgeAsync) { ReceivedAt = time.GetUtcNow() });
        return true;
    }

    internal void Close() => inbox.Close();
}
