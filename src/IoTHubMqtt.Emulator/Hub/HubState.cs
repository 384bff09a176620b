using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Emulator.Storage;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// The hub: the façade the endpoints (MQTT, REST, AMQP, DPS) talk to. It holds the access policies and the hub's
/// settings and puts together its parts: the identity <see cref="Registry"/>, the <see cref="Twins"/>, the
/// <see cref="CloudToDevice"/> queues with their <see cref="Feedback"/>, and the <see cref="Telemetry"/> log. The parts
/// share one lock, so a change that spans them (a device deleted with its queue) is one step; every change that is
/// acknowledged to a caller is written to the store before the call returns.
/// </summary>
internal sealed class HubState
{
    /// <summary>Rows the store deletes at a time once they are past the retention (it holds at most this many more).</summary>
    public const int TelemetryPruneStep = 1000;

    private readonly object gate = new();
    private readonly IHubStore store;
    private readonly IoTHubEmulatorOptions options;

    /// <summary>Large telemetry bodies, reused once the log lets them go unread (the device connections rent from it).</summary>
    public LargeBodyPool Bodies { get; } = new();

    /// <summary>Loads the hub from <paramref name="store"/>; its designed errors (a damaged or foreign database) come out as they are.</summary>
    public HubState(IoTHubEmulatorOptions options, IHubStore store, EmulatorLog log)
    {
        this.options = options;
        Time = options.TimeProvider;
        Telemetry = new TelemetryLog(options.TelemetryRetention, PartitionOf, Time, options.TelemetryRetentionPeriod, Bodies);
        var storedOwnerKey = store.GetSetting("policy.iothubowner");
        if (options.OwnerKey is null && storedOwnerKey is not null && !IsKey(storedOwnerKey))
        {
            throw new IoTHubMqtt.Core.Errors.IoTHubMqttException(IoTHubMqtt.Core.Errors.ErrorIds.EmulatorDataCorrupt,
                $"The owner key kept in the emulator's database{(store.Location is { } at ? $" '{at}'" : "")} is damaged (not base64 of 16 to 64 bytes).",
                "Pass the owner key you used before (-OwnerKey, or --owner-key-file for the standalone emulator) to replace it, or move the database away to start with an empty hub.",
                store.Location);
        }

        var ownerKey = options.OwnerKey ?? storedOwnerKey ?? SharedAccessKeys.Generate();
        store.SetSetting("policy.iothubowner", ownerKey);
        Policies = new Dictionary<string, AccessPolicy>(StringComparer.Ordinal)
        {
            ["iothubowner"] = new("iothubowner", ownerKey, DerivePolicyKey(ownerKey, "secondary"), HubPermissions.All),
            ["service"] = new("service", DerivePolicyKey(ownerKey, "service"), DerivePolicyKey(ownerKey, "service2"), HubPermissions.ServiceConnect),
            ["device"] = new("device", DerivePolicyKey(ownerKey, "device"), DerivePolicyKey(ownerKey, "device2"), HubPermissions.DeviceConnect),
            ["registryRead"] = new("registryRead", DerivePolicyKey(ownerKey, "registryRead"), DerivePolicyKey(ownerKey, "registryRead2"), HubPermissions.RegistryRead),
            ["registryReadWrite"] = new("registryReadWrite", DerivePolicyKey(ownerKey, "registryReadWrite"), DerivePolicyKey(ownerKey, "registryReadWrite2"), HubPermissions.RegistryRead | HubPermissions.RegistryWrite),
        };

        // From here on a failed write is a 500, never an acknowledgement.
        var guarded = new GuardedHubStore(store, log);
        Registry = new DeviceRegistry(gate, guarded, Time, log);
        Twins = new TwinStore(gate, Registry, Time);
        Feedback = new FeedbackLog(gate, guarded, Time);
        CloudToDevice = new CloudToDeviceQueues(gate, guarded, Registry, Feedback, options, log);
        Registry.Removing += CloudToDevice.Forget; // a deleted device's queue goes with it, in the same step

        Registry.Load(store.LoadDevices());
        CloudToDevice.Load(store.LoadCloudToDevice());
        Telemetry.Restore(store.LoadTelemetry());
        store.PruneTelemetry(Telemetry.OldestSequenceNumber);
        Feedback.Load(store.LoadFeedback());
        this.store = guarded;
    }

    /// <summary>Raised (outside the lock) after the desired properties of a device changed: device id, patch with <c>$version</c>.</summary>
    public event Action<string, JsonObject>? DesiredChanged
    {
        add => Twins.DesiredChanged += value;
        remove => Twins.DesiredChanged -= value;
    }

    /// <summary>Raised (outside the lock) when a device has a C2D message to deliver.</summary>
    public event Action<string>? CloudToDeviceAvailable
    {
        add => CloudToDevice.Available += value;
        remove => CloudToDevice.Available -= value;
    }

    /// <summary>Raised when a device is deleted or disabled: its connection must end.</summary>
    public event Action<string>? DeviceRevoked
    {
        add => Registry.Revoked += value;
        remove => Registry.Revoked -= value;
    }

    /// <summary>Devices and module identities with their keys and status.</summary>
    public DeviceRegistry Registry { get; }

    /// <summary>Tags, desired and reported properties of every identity.</summary>
    public TwinStore Twins { get; }

    /// <summary>Each device's cloud-to-device queue.</summary>
    public CloudToDeviceQueues CloudToDevice { get; }

    /// <summary>Delivery feedback waiting for the service to read it.</summary>
    public FeedbackLog Feedback { get; }

    public TelemetryLog Telemetry { get; }

    public IReadOnlyDictionary<string, AccessPolicy> Policies { get; }

    /// <summary>The hub's clock (<see cref="IoTHubEmulatorOptions.TimeProvider"/>).</summary>
    public TimeProvider Time { get; }

    /// <summary>Now on the hub's clock, UTC.</summary>
    public DateTime Now => Time.GetUtcNow().UtcDateTime;

    public string HostName => options.HostName;

    /// <summary>Partitions of the Event Hub-compatible endpoint.</summary>
    public int PartitionCount => options.PartitionCount;

    /// <summary>The name of the Event Hub-compatible entity the hub's events endpoint redirects to.</summary>
    public string EventHubName => "iothub-ehub-" + HostName.Split('.')[0].ToLowerInvariant();

    /// <summary>The partition a device's telemetry goes to: a stable hash of its id.</summary>
    public int PartitionOf(string deviceId)
    {
        var hash = 2166136261u;
        foreach (var c in deviceId)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return (int)(hash % (uint)options.PartitionCount);
    }

    // ---------------------------------------------------------------- registry

    public int DeviceCount => Registry.Count;

    public DeviceIdentity? FindDevice(string deviceId) => Registry.Find(deviceId);

    /// <summary>Creates a device (ifMatch null) or updates one (ifMatch = its ETag or "*"); returns the device JSON.</summary>
    public JsonObject PutDevice(string deviceId, JsonObject body, string? ifMatch) => Registry.Put(deviceId, null, body, ifMatch);

    /// <summary>Creates or updates a module identity of an existing device.</summary>
    public JsonObject PutModule(string deviceId, string moduleId, JsonObject body, string? ifMatch) => Registry.Put(deviceId, moduleId, body, ifMatch);

    public JsonObject GetDeviceJson(string deviceId) => Registry.GetJson(deviceId);

    public JsonArray ListDevices(int top) => Registry.List(top);

    /// <summary>The ids of every device (not module), in id order: a snapshot for export jobs.</summary>
    public List<string> DeviceIds() => Registry.DeviceIds();

    public JsonArray ListModules(string deviceId) => Registry.ListModules(deviceId);

    /// <summary>Deletes a device (with its modules, twins and queued messages) or a module.</summary>
    public void DeleteDevice(string deviceId, string? ifMatch) => Registry.Delete(deviceId, ifMatch);

    public void SetConnectionState(string deviceId, bool connected) => Registry.SetConnectionState(deviceId, connected);

    // ---------------------------------------------------------------- twins

    public JsonObject GetTwinJson(string deviceId) => Twins.GetJson(deviceId);

    /// <summary>The body a device gets for a twin GET: desired and reported with their versions.</summary>
    public JsonObject GetDeviceTwinSections(string deviceId) => Twins.GetSections(deviceId);

    /// <summary>Applies a reported-properties patch from the device; returns the new reported version.</summary>
    public long PatchReported(string deviceId, JsonObject patch) => Twins.PatchReported(deviceId, patch);

    /// <summary>Service PATCH /twins/{id}: merges tags and desired properties.</summary>
    public JsonObject PatchTwin(string deviceId, JsonObject body, string? ifMatch) => Twins.Patch(deviceId, body, ifMatch);

    /// <summary>Service PUT /twins/{id}: replaces tags and desired properties.</summary>
    public JsonObject ReplaceTwin(string deviceId, JsonObject body, string? ifMatch) => Twins.Replace(deviceId, body, ifMatch);

    /// <summary>All twins in id order from <paramref name="skip"/>, for the query API.</summary>
    public (JsonArray Page, bool More) QueryTwins(int skip, int take) => Twins.Query(skip, take);

    // ---------------------------------------------------------------- cloud-to-device

    public CloudToDeviceMessage EnqueueCloudToDevice(string deviceId, byte[] body, IReadOnlyDictionary<string, string> properties,
        string? messageId, string? correlationId, string? userId, string? contentType, string? contentEncoding, string? ack, DateTime? expiryUtc) =>
        CloudToDevice.Enqueue(deviceId, body, properties, messageId, correlationId, userId, contentType, contentEncoding, ack, expiryUtc);

    /// <summary>Locks and returns the messages ready to send to a device now (not locked, not expired).</summary>
    public List<CloudToDeviceMessage> TakeDeliverable(string deviceId) => CloudToDevice.TakeDeliverable(deviceId);

    /// <summary>The device acknowledged (PUBACK) a message: it is done.</summary>
    public bool CompleteCloudToDevice(string deviceId, string messageId) => CloudToDevice.Complete(deviceId, messageId);

    /// <summary>The device went away: its locked messages become deliverable again (on its next connection).</summary>
    public void AbandonLocked(string deviceId) => CloudToDevice.AbandonLocked(deviceId);

    public int QueuedCount(string deviceId) => CloudToDevice.QueuedCount(deviceId);

    /// <summary>Devices whose locks ran out: their messages should be sent again.</summary>
    public List<string> DevicesWithExpiredLocks() => CloudToDevice.DevicesWithExpiredLocks();

    /// <summary>Takes up to <paramref name="max"/> waiting feedback records (see <see cref="FeedbackLog.TakeAsync"/>).</summary>
    public Task<List<CloudToDeviceFeedback>> TakeFeedbackAsync(int max, TimeSpan wait, CancellationToken cancellationToken = default) =>
        Feedback.TakeAsync(max, wait, cancellationToken);

    /// <summary>Puts taken records back in order (a reader abandoned them or went away before completing them).</summary>
    public void ReturnFeedback(IReadOnlyCollection<CloudToDeviceFeedback> records) => Feedback.Return(records);

    // ---------------------------------------------------------------- telemetry

    /// <summary>Numbers, stores and keeps a telemetry message; returns once it is on disk (when persisting), so it may be acknowledged.</summary>
    public TelemetryMessage AppendTelemetry(Func<long, TelemetryMessage> create)
    {
        var message = Telemetry.Append(create, store.AppendTelemetry);
        if (message.SequenceNumber % TelemetryPruneStep == 0)
        {
            // Memory and disk keep the same retention: the store drops only what the log no longer holds.
            store.PruneTelemetry(Telemetry.OldestSequenceNumber);
        }

        return message;
    }

    private static bool IsKey(string key)
    {
        try
        {
            return SharedAccessKeys.Decode(key).Length is >= 16 and <= 64;
        }
        catch (IoTHubMqtt.Core.Errors.IoTHubMqttException)
        {
            return false;
        }
    }

    private static string DerivePolicyKey(string ownerKey, string label) =>
        Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(SharedAccessKeys.Decode(ownerKey, "OwnerKey"), System.Text.Encoding.UTF8.GetBytes(label)));
}
