using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Emulator.Hub;

namespace IoTHubMqtt.Emulator.Storage;

/// <summary>
/// The store as the running hub uses it: a write that fails (disk full, file made read-only, damage found) is logged
/// once with the file and the fix, and reaches the caller as the hub's 500 answer (<see cref="HubError.StorageFailed"/>),
/// so the REST call, the PUBACK or the twin response that would have acknowledged the change is never sent.
/// </summary>
internal sealed class GuardedHubStore(IHubStore inner, EmulatorLog log) : IHubStore
{
    private int logged;

    public string? Location => inner.Location;

    public IEnumerable<DeviceIdentity> LoadDevices() => Guard(inner.LoadDevices);

    public void SaveDevice(DeviceIdentity device) => Guard(() => inner.SaveDevice(device));

    public void DeleteDevice(string deviceId) => Guard(() => inner.DeleteDevice(deviceId));

    public IEnumerable<CloudToDeviceMessage> LoadCloudToDevice() => Guard(inner.LoadCloudToDevice);

    public void SaveCloudToDevice(CloudToDeviceMessage message) => Guard(() => inner.SaveCloudToDevice(message));

    public void DeleteCloudToDevice(long sequenceNumber) => Guard(() => inner.DeleteCloudToDevice(sequenceNumber));

    public IEnumerable<TelemetryMessage> LoadTelemetry() => Guard(inner.LoadTelemetry);

    public void AppendTelemetry(TelemetryMessage message) => Guard(() => inner.AppendTelemetry(message));

    public void PruneTelemetry(long beforeSequence) => Guard(() => inner.PruneTelemetry(beforeSequence));

    public IEnumerable<CloudToDeviceFeedback> LoadFeedback() => Guard(inner.LoadFeedback);

    public void SaveFeedback(CloudToDeviceFeedback record) => Guard(() => inner.SaveFeedback(record));

    public void DeleteFeedback(long sequenceNumber) => Guard(() => inner.DeleteFeedback(sequenceNumber));

    public string? GetSetting(string name) => Guard(() => inner.GetSetting(name));

    public void SetSetting(string name, string value) => Guard(() => inner.SetSetting(name, value));

    public void Dispose() => inner.Dispose();

    private void Guard(Action action) => Guard(() =>
    {
        action();
        return 0;
    });

    private T Guard<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (IoTHubMqttException ex)
        {
            if (Interlocked.Exchange(ref logged, 1) == 0)
            {
                log.Error($"{ex.ErrorId}: {ex.Message} {ex.RecommendedAction}");
            }

            throw HubError.StorageFailed(ex);
        }
    }
}
