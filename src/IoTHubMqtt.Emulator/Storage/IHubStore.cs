using IoTHubMqtt.Emulator.Hub;

namespace IoTHubMqtt.Emulator.Storage;

/// <summary>Where the hub keeps what must survive a restart. Calls are synchronous: a change is stored before it is acknowledged.</summary>
internal interface IHubStore : IDisposable
{
    /// <summary>The file the store keeps its state in, for messages; null when it keeps nothing.</summary>
    string? Location => null;

    IEnumerable<DeviceIdentity> LoadDevices();

    void SaveDevice(DeviceIdentity device);

    void DeleteDevice(string deviceId);

    IEnumerable<CloudToDeviceMessage> LoadCloudToDevice();

    void SaveCloudToDevice(CloudToDeviceMessage message);

    void DeleteCloudToDevice(long sequenceNumber);

    IEnumerable<TelemetryMessage> LoadTelemetry();

    void AppendTelemetry(TelemetryMessage message);

    /// <summary>Deletes telemetry with sequence numbers below <paramref name="beforeSequence"/> (past the retention).</summary>
    void PruneTelemetry(long beforeSequence);

    IEnumerable<CloudToDeviceFeedback> LoadFeedback();

    void SaveFeedback(CloudToDeviceFeedback record);

    void DeleteFeedback(long sequenceNumber);

    string? GetSetting(string name);

    void SetSetting(string name, string value);
}

/// <summary>Keeps nothing: an emulator without a data path starts empty every time.</summary>
internal sealed class MemoryHubStore : IHubStore
{
    private readonly Dictionary<string, string> settings = new(StringComparer.Ordinal);

    public IEnumerable<DeviceIdentity> LoadDevices() => [];

    public void SaveDevice(DeviceIdentity device)
    {
    }

    public void DeleteDevice(string deviceId)
    {
    }

    public IEnumerable<CloudToDeviceMessage> LoadCloudToDevice() => [];

    public void SaveCloudToDevice(CloudToDeviceMessage message)
    {
    }

    public void DeleteCloudToDevice(long sequenceNumber)
    {
    }

    public IEnumerable<TelemetryMessage> LoadTelemetry() => [];

    public void AppendTelemetry(TelemetryMessage message)
    {
    }

    public void PruneTelemetry(long beforeSequence)
    {
    }

    public IEnumerable<CloudToDeviceFeedback> LoadFeedback() => [];

    public void SaveFeedback(CloudToDeviceFeedback record)
    {
    }

    public void DeleteFeedback(long sequenceNumber)
    {
    }

    public string? GetSetting(string name)
    {
        lock (settings)
        {
            return settings.GetValueOrDefault(name);
        }
    }

    public void SetSetting(string name, string value)
    {
        lock (settings)
        {
            settings[name] = value;
        }
    }

    public void Dispose()
    {
    }
}
