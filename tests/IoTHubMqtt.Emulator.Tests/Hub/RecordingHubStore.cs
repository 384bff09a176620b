using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Emulator.Storage;

namespace IoTHubMqtt.Emulator.Tests.Hub;

/// <summary>A store that keeps what the hub's parts write, so a test can see what would be on disk.</summary>
internal sealed class RecordingHubStore : IHubStore
{
    public Dictionary<string, DeviceIdentity> Devices { get; } = new(StringComparer.Ordinal);

    public Dictionary<long, CloudToDeviceMessage> CloudToDevice { get; } = [];

    public Dictionary<long, CloudToDeviceFeedback> Feedback { get; } = [];

    public IEnumerable<DeviceIdentity> LoadDevices() => Devices.Values.ToList();

    public void SaveDevice(DeviceIdentity device) => Devices[device.Key] = device;

    public void DeleteDevice(string deviceId)
    {
        Devices.Remove(deviceId);
        foreach (var message in CloudToDevice.Values.Where(m => m.DeviceId == deviceId).ToList())
        {
            CloudToDevice.Remove(message.SequenceNumber);
        }
    }

    public IEnumerable<CloudToDeviceMessage> LoadCloudToDevice() => CloudToDevice.Values.OrderBy(m => m.SequenceNumber).ToList();

    public void SaveCloudToDevice(CloudToDeviceMessage message) => CloudToDevice[message.SequenceNumber] = message;

    public void DeleteCloudToDevice(long sequenceNumber) => CloudToDevice.Remove(sequenceNumber);

    public IEnumerable<TelemetryMessage> LoadTelemetry() => [];

    public void AppendTelemetry(TelemetryMessage message)
    {
    }

    public void PruneTelemetry(long beforeSequence)
    {
    }

    public IEnumerable<CloudToDeviceFeedback> LoadFeedback() => Feedback.Values.ToList();

    public void SaveFeedback(CloudToDeviceFeedback record) => Feedback[record.SequenceNumber] = record;

    public void DeleteFeedback(long sequenceNumber) => Feedback.Remove(sequenceNumber);

    public string? GetSetting(string name) => null;

    public void SetSetting(string name, string value)
    {
    }

    public void Dispose()
    {
    }
}
