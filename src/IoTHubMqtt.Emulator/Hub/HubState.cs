using System.Globalization;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Emulator.Storage;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// The hub's state: registry, twins, C2D queues, telemetry and policies. One lock guards it; every change that is
/// acknowledged to a caller is written to the store before the call returns.
/// </summary>
internal sealed class HubState
{
    public const int MaxCloudToDeviceQueue = 50;
    public const int MaxCloudToDeviceBytes = 64 * 1024;

    /// <summary>Delivery feedback records kept until a reader takes them (the oldest are dropped beyond this).</summary>
    public const int MaxFeedbackWaiting = 10_000;

    private readonly object gate = new();
    private readonly List<CloudToDeviceFeedback> feedback = [];
    private long nextFeedbackSequence = 1;
    private readonly Arrivals feedbackArrivals;
    private readonly Dictionary<string, DeviceIdentity> devices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<CloudToDeviceMessage>> queues = new(StringComparer.Ordinal);
    private readonly IHubStore store;
    private readonly IoTHubEmulatorOptions options;
    private readonly EmulatorLog log;
    private long nextC2DSequence = 1;

    /// <summary>Loads the hub from <paramref name="store"/>; its designed errors (a damaged or foreign database) come out as they are.</summary>
    public HubState(IoTHubEmulatorOptions options, IHubStore store, EmulatorLog log)
    {
        this.options = options;
        this.log = log;
        Time = options.TimeProvider;
        feedbackArrivals = new Arrivals(Time);
        Telemetry = new TelemetryLog(options.TelemetryRetention, PartitionOf, Time, options.TelemetryRetentionPeriod);
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

        foreach (var device in store.LoadDevices())
        {
            devices[device.Key] = device;
        }

        foreach (var message in store.LoadCloudToDevice())
        {
            if (!queues.TryGetValue(message.DeviceId, out var queue))
            {
                queues[message.DeviceId] = queue = [];
            }

            queue.Add(message);
            nextC2DSequence = Math.Max(nextC2DSequence, message.SequenceNumber + 1);
        }

        Telemetry.Restore(store.LoadTelemetry());
        store.PruneTelemetry(Telemetry.OldestSequenceNumber);
        foreach (var record in store.LoadFeedback().OrderBy(r => r.SequenceNumber).TakeLast(MaxFeedbackWaiting))
        {
            feedback.Add(record);
            nextFeedbackSequence = Math.Max(nextFeedbackSequence, record.SequenceNumber + 1);
        }

        this.store = new GuardedHubStore(store, log); // from here on a failed write is a 500, never an acknowledgement
    }

    /// <summary>Raised (outside the lock) after the desired properties of a device changed: device id, patch with <c>$version</c>.</summary>
    public event Action<string, JsonObject>? DesiredChanged;

    /// <summary>Raised (outside the lock) when a device has a C2D message to deliver.</summary>
    public event Action<string>? CloudToDeviceAvailable;

    /// <summary>Raised when a device is deleted or disabled: its connection must end.</summary>
    public event Action<string>? DeviceRevoked;

    public IReadOnlyDictionary<string, AccessPolicy> Policies { get; }

    /// <summary>The hub's clock (<see cref="IoTHubEmulatorOptions.TimeProvider"/>).</summary>
    public TimeProvider Time { get; }

    /// <summary>Now on the hub's clock, UTC.</summary>
    public DateTime Now => Time.GetUtcNow().UtcDateTime;

    public TelemetryLog Telemetry { get; }

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

    public int DeviceCount
    {
        get
        {
            lock (gate)
            {
                return devices.Count;
            }
        }
    }

    // ---------------------------------------------------------------- registry

    public DeviceIdentity? FindDevice(string deviceId)
    {
        lock (gate)
        {
            return devices.GetValueOrDefault(deviceId);
        }
    }

    /// <summary>Creates a device (ifMatch null) or updates one (ifMatch = its ETag or "*"); returns the device JSON.</summary>
    public JsonObject PutDevice(string deviceId, JsonObject body, string? ifMatch) => PutIdentity(deviceId, null, body, ifMatch);

    /// <summary>Creates or updates a module identity of an existing device.</summary>
    public JsonObject PutModule(string deviceId, string moduleId, JsonObject body, string? ifMatch) => PutIdentity(deviceId, moduleId, body, ifMatch);

    private JsonObject PutIdentity(string parentId, string? moduleId, JsonObject body, string? ifMatch)
    {
        IdentityValidatorCheck(parentId);
        if (moduleId is not null && !IdentityValidator.IsValidModuleId(moduleId))
        {
            throw HubError.BadRequest("The module ID is not valid.");
        }

        if (body["deviceId"] is JsonValue idValue && idValue.GetValue<string>() != parentId)
        {
            throw HubError.BadRequest("The deviceId in the body does not match the one in the path.");
        }

        if (moduleId is not null && body["moduleId"] is JsonValue moduleValue && moduleValue.GetValue<string>() != moduleId)
        {
            throw HubError.BadRequest("The moduleId in the body does not match the one in the path.");
        }

        if (moduleId is not null && FindDevice(parentId) is null)
        {
            throw HubError.DeviceNotFound(parentId);
        }

        var deviceId = moduleId is null ? parentId : $"{parentId}/{moduleId}";

        var status = body["status"]?.GetValue<string>();
        var auth = body["authentication"] as JsonObject;
        if (auth is null && ifMatch is not null && FindDevice(deviceId) is { } current)
        {
            // An update that leaves authentication out keeps the device's credentials.
            auth = current.AuthType == DeviceAuthType.Sas
                ? new JsonObject { ["type"] = "sas", ["symmetricKey"] = new JsonObject { ["primaryKey"] = current.PrimaryKey, ["secondaryKey"] = current.SecondaryKey } }
                : new JsonObject { ["type"] = "selfSigned", ["x509Thumbprint"] = new JsonObject { ["primaryThumbprint"] = current.PrimaryThumbprint, ["secondaryThumbprint"] = current.SecondaryThumbprint } };
        }

        var type = auth?["type"]?.GetValue<string>() ?? "sas";
        string? primaryKey = null, secondaryKey = null, primaryThumb = null, secondaryThumb = null;
        DeviceAuthType authType;
        switch (type)
        {
            case "sas":
                authType = DeviceAuthType.Sas;
                // The SDKs send empty strings for keys they leave to the hub (Node: Registry.create({ deviceId })): generated.
                primaryKey = NonEmpty(auth?["symmetricKey"]?["primaryKey"]?.GetValue<string>());
                secondaryKey = NonEmpty(auth?["symmetricKey"]?["secondaryKey"]?.GetValue<string>());
                CheckKey(primaryKey);
                CheckKey(secondaryKey);
                break;
            case "selfSigned":
                authType = DeviceAuthType.SelfSigned;
                primaryThumb = NonEmpty(auth?["x509Thumbprint"]?["primaryThumbprint"]?.GetValue<string>());
                secondaryThumb = NonEmpty(auth?["x509Thumbprint"]?["secondaryThumbprint"]?.GetValue<string>());
                if (string.IsNullOrEmpty(primaryThumb))
                {
                    throw HubError.BadRequest("A selfSigned device needs authentication.x509Thumbprint.primaryThumbprint.");
                }

                break;
            default:
                throw HubError.BadRequest($"Authentication type '{type}' is not supported by the emulator (use sas or selfSigned).");
        }

        bool revoked = false;
        JsonObject result;
        lock (gate)
        {
            devices.TryGetValue(deviceId, out var existing);
            if (existing is null)
            {
                if (ifMatch is not null && !IsWildcard(ifMatch))
                {
                    throw HubError.DeviceNotFound(deviceId);
                }

                existing = new DeviceIdentity { DeviceId = parentId, ModuleId = moduleId, StatusUpdatedTime = Now };
            }
            else
            {
                if (ifMatch is null)
                {
                    throw HubError.DeviceAlreadyExists(deviceId);
                }

                if (!ETagMatches(ifMatch, existing.ETag))
                {
                    throw HubError.PreconditionFailed("the ETag does not match the device");
                }
            }

            var updated = Copy(existing);
            updated.AuthType = authType;
            updated.PrimaryKey = authType == DeviceAuthType.Sas ? primaryKey ?? existing.PrimaryKey ?? SharedAccessKeys.Generate() : null;
            updated.SecondaryKey = authType == DeviceAuthType.Sas ? secondaryKey ?? existing.SecondaryKey ?? SharedAccessKeys.Generate() : null;
            updated.PrimaryThumbprint = primaryThumb?.ToUpperInvariant();
            updated.SecondaryThumbprint = secondaryThumb?.ToUpperInvariant();
            if (status is not null)
            {
                var enabled = status switch
                {
                    "enabled" => true,
                    "disabled" => false,
                    _ => throw HubError.BadRequest("status must be 'enabled' or 'disabled'."),
                };
                if (enabled != updated.Enabled)
                {
                    updated.Enabled = enabled;
                    updated.StatusUpdatedTime = Now;
                    revoked = !enabled;
                }
            }

            updated.StatusReason = body["statusReason"]?.GetValue<string>() ?? updated.StatusReason;
            revoked |= existing.PrimaryKey != updated.PrimaryKey && existing.PrimaryKey is not null;
            updated.ETag = DeviceIdentity.NewETag();
            store.SaveDevice(updated);
            devices[deviceId] = updated;
            result = DeviceJson(updated);
        }

        if (revoked)
        {
            DeviceRevoked?.Invoke(deviceId);
        }

        log.Information($"Identity '{deviceId}' saved.");
        return result;
    }

    public JsonObject GetDeviceJson(string deviceId)
    {
        lock (gate)
        {
            return DeviceJson(devices.GetValueOrDefault(deviceId) ?? throw HubError.DeviceNotFound(deviceId));
        }
    }

    public JsonArray ListDevices(int top)
    {
        lock (gate)
        {
            return new JsonArray(devices.Values.Where(d => d.ModuleId is null).OrderBy(d => d.DeviceId, StringComparer.Ordinal).Take(top).Select(d => (JsonNode)DeviceJson(d)).ToArray());
        }
    }

    /// <summary>The ids of every device (not module), in id order: a snapshot for export jobs.</summary>
    public List<string> DeviceIds()
    {
        lock (gate)
        {
            return devices.Values.Where(d => d.ModuleId is null).Select(d => d.DeviceId).Order(StringComparer.Ordinal).ToList();
        }
    }

    public JsonArray ListModules(string deviceId)
    {
        lock (gate)
        {
            if (!devices.ContainsKey(deviceId))
            {
                throw HubError.DeviceNotFound(deviceId);
            }

            return new JsonArray(devices.Values.Where(d => d.DeviceId == deviceId && d.ModuleId is not null)
                .OrderBy(d => d.ModuleId, StringComparer.Ordinal).Select(d => (JsonNode)DeviceJson(d)).ToArray());
        }
    }

    public void DeleteDevice(string deviceId, string? ifMatch)
    {
        List<string> removed;
        lock (gate)
        {
            var existing = devices.GetValueOrDefault(deviceId) ?? throw HubError.DeviceNotFound(deviceId);
            if (ifMatch is not null && !ETagMatches(ifMatch, existing.ETag))
            {
                throw HubError.PreconditionFailed("the ETag does not match the device");
            }

            removed = existing.ModuleId is null
                ? devices.Values.Where(d => d.DeviceId == existing.DeviceId).Select(d => d.Key).ToList() // a device takes its modules with it
                : [deviceId];
            foreach (var key in removed)
            {
                store.DeleteDevice(key);
                devices.Remove(key);
                queues.Remove(key);
            }
        }

        foreach (var key in removed)
        {
            DeviceRevoked?.Invoke(key);
        }

        log.Information($"Device '{deviceId}' deleted.");
    }

    public void SetConnectionState(string deviceId, bool connected)
    {
        lock (gate)
        {
            if (devices.TryGetValue(deviceId, out var device))
            {
                device.Connected = connected;
                device.ConnectionStateUpdatedTime = Now;
                device.LastActivityTime = Now;
            }
        }
    }

    // ---------------------------------------------------------------- twins

    public JsonObject GetTwinJson(string deviceId)
    {
        lock (gate)
        {
            return TwinJson(devices.GetValueOrDefault(deviceId) ?? throw HubError.DeviceNotFound(deviceId));
        }
    }

    /// <summary>The body a device gets for a twin GET: desired and reported with their versions.</summary>
    public JsonObject GetDeviceTwinSections(string deviceId)
    {
        lock (gate)
        {
            var device = devices.GetValueOrDefault(deviceId) ?? throw HubError.DeviceNotFound(deviceId);
            return new JsonObject
            {
                ["desired"] = TwinDocument.WithVersion(device.Desired, device.DesiredVersion),
                ["reported"] = TwinDocument.WithVersion(device.Reported, device.ReportedVersion),
            };
        }
    }

    /// <summary>Applies a reported-properties patch from the device; returns the new reported version.</summary>
    public long PatchReported(string deviceId, JsonObject patch)
    {
        lock (gate)
        {
            var device = devices.GetValueOrDefault(deviceId) ?? throw HubError.DeviceNotFound(deviceId);
            var merged = TwinDocument.Merge(device.Reported, patch);
            var updated = Copy(device);
            updated.Reported = merged;
            updated.ReportedMetadata = TwinMetadata.AfterPatch(device.Reported, device.ReportedMetadata, patch, TwinMetadata.Stamp(Now, null));
            updated.ReportedVersion++;
            updated.TwinVersion++;
            updated.TwinETag = DeviceIdentity.NewETag();
            store.SaveDevice(updated);
            devices[deviceId] = updated;
            return updated.ReportedVersion;
        }
    }

    /// <summary>Service PATCH /twins/{id}: merges tags and desired properties.</summary>
    public JsonObject PatchTwin(string deviceId, JsonObject body, string? ifMatch) => UpdateTwin(deviceId, body, ifMatch, replace: false);

    /// <summary>Service PUT /twins/{id}: replaces tags and desired properties.</summary>
    public JsonObject ReplaceTwin(string deviceId, JsonObject body, string? ifMatch) => UpdateTwin(deviceId, body, ifMatch, replace: true);

    private JsonObject UpdateTwin(string deviceId, JsonObject body, string? ifMatch, bool replace)
    {
        var tags = body["tags"] as JsonObject;
        var desired = body["properties"]?["desired"] as JsonObject;
        // A replace carries the whole twin as read (reported properties and $metadata included): those are read-only and
        // ignored; a patch that names reported properties is refused.
        if (!replace && body["properties"]?["reported"] is not null)
        {
            throw HubError.BadRequest("Reported properties can only be changed by the device.");
        }

        if (tags is not null)
        {
            TwinDocument.Validate(tags, 1);
        }

        if (desired is not null)
        {
            TwinDocument.Validate(desired, 1, allowVersion: true, allowMetadata: true);
        }

        JsonObject? desiredPatch = null;
        JsonObject result;
        lock (gate)
        {
            var device = devices.GetValueOrDefault(deviceId) ?? throw HubError.DeviceNotFound(deviceId);
            if (ifMatch is not null && !ETagMatches(ifMatch, device.TwinETag))
            {
                throw HubError.PreconditionFailed("the ETag does not match the twin");
            }

            var updated = Copy(device);
            if (tags is not null || replace)
            {
                updated.Tags = replace ? Clean(tags ?? []) : TwinDocument.Merge(device.Tags, tags!);
            }

            if (desired is not null || replace)
            {
                var newDesired = replace ? Clean(desired ?? []) : TwinDocument.Merge(device.Desired, desired!);
                TwinDocument.CheckSize(newDesired);
                updated.Desired = newDesired;
                updated.DesiredVersion++;
                var stamp = TwinMetadata.Stamp(Now, updated.DesiredVersion);
                updated.DesiredMetadata = replace
                    ? TwinMetadata.ForWhole(newDesired, stamp)
                    : TwinMetadata.AfterPatch(device.Desired, device.DesiredMetadata, desired!, stamp);
                desiredPatch = TwinDocument.WithVersion(replace ? newDesired : Clean(desired!, keepNulls: true), updated.DesiredVersion);
            }

            updated.TwinVersion++;
            updated.TwinETag = DeviceIdentity.NewETag();
            store.SaveDevice(updated);
            devices[deviceId] = updated;
            result = TwinJson(updated);
        }

        if (desiredPatch is not null)
        {
            DesiredChanged?.Invoke(deviceId, desiredPatch);
        }

        return result;
    }

    /// <summary>All twins in id order from <paramref name="skip"/>, for the query API.</summary>
    public (JsonArray Page, bool More) QueryTwins(int skip, int take)
    {
        lock (gate)
        {
            var ordered = devices.Values.Where(d => d.ModuleId is null).OrderBy(d => d.DeviceId, StringComparer.Ordinal).Skip(skip).Take(take + 1).ToList();
            var page = new JsonArray(ordered.Take(take).Select(d => (JsonNode)TwinJson(d)).ToArray());
            return (page, ordered.Count > take);
        }
    }

    // ---------------------------------------------------------------- cloud-to-device

    public CloudToDeviceMessage EnqueueCloudToDevice(string deviceId, byte[] body, IReadOnlyDictionary<string, string> properties,
        string? messageId, string? correlationId, string? userId, string? contentType, string? contentEncoding, string? ack, DateTime? expiryUtc)
    {
        if (body.Length > MaxCloudToDeviceBytes)
        {
            throw HubError.MessageTooLarge(MaxCloudToDeviceBytes);
        }

        CloudToDeviceMessage message;
        lock (gate)
        {
            if (!devices.ContainsKey(deviceId) || deviceId.Contains('/', StringComparison.Ordinal))
            {
                throw HubError.DeviceNotFound(deviceId);
            }

            if (!queues.TryGetValue(deviceId, out var queue))
            {
                queues[deviceId] = queue = [];
            }

            DropExpired(queue);
            if (queue.Count >= MaxCloudToDeviceQueue)
            {
                throw HubError.QueueFull(deviceId);
            }

            var now = Now;
            message = new CloudToDeviceMessage
            {
                SequenceNumber = nextC2DSequence++,
                DeviceId = deviceId,
                MessageId = string.IsNullOrEmpty(messageId) ? Guid.NewGuid().ToString() : messageId,
                Body = body,
                Properties = new Dictionary<string, string>(properties, StringComparer.Ordinal),
                CorrelationId = correlationId,
                UserId = userId,
                ContentType = contentType,
                ContentEncoding = contentEncoding,
                Ack = ack,
                EnqueuedTimeUtc = now,
                ExpiryTimeUtc = expiryUtc ?? now + options.CloudToDeviceDefaultTimeToLive,
                ExpirySetByService = expiryUtc is not null,
            };
            store.SaveCloudToDevice(message);
            queue.Add(message);
        }

        CloudToDeviceAvailable?.Invoke(deviceId);
        return message;
    }

    /// <summary>Locks and returns the messages ready to send to a device now (not locked, not expired).</summary>
    public List<CloudToDeviceMessage> TakeDeliverable(string deviceId)
    {
        var ready = new List<CloudToDeviceMessage>();
        lock (gate)
        {
            if (!queues.TryGetValue(deviceId, out var queue))
            {
                return ready;
            }

            DropExpired(queue);
            var now = Now;
            foreach (var message in queue)
            {
                if (message.LockedUntilUtc is { } until && until > now)
                {
                    continue;
                }

                if (message.DeliveryCount >= options.CloudToDeviceMaxDeliveryCount)
                {
                    continue;
                }

                message.DeliveryCount++;
                message.LockedUntilUtc = now + options.CloudToDeviceLockDuration;
                store.SaveCloudToDevice(message);
                ready.Add(message);
            }

            foreach (var dead in queue.Where(m => m.DeliveryCount >= options.CloudToDeviceMaxDeliveryCount && m.LockedUntilUtc < now).ToList())
            {
                log.Warning($"C2D message {dead.MessageId} for '{deviceId}' dead-lettered after {dead.DeliveryCount} deliveries.");
                queue.Remove(dead);
                store.DeleteCloudToDevice(dead.SequenceNumber);
                AddFeedback(dead, "DeliveryCountExceeded");
            }
        }

        return ready;
    }

    /// <summary>The device acknowledged (PUBACK) a message: it is done.</summary>
    public bool CompleteCloudToDevice(string deviceId, string messageId)
    {
        lock (gate)
        {
            if (!queues.TryGetValue(deviceId, out var queue))
            {
                return false;
            }

            var index = queue.FindIndex(m => m.MessageId == messageId && m.LockedUntilUtc is not null);
            if (index < 0)
            {
                return false;
            }

            store.DeleteCloudToDevice(queue[index].SequenceNumber);
            AddFeedback(queue[index], "Success");
            queue.RemoveAt(index);
            return true;
        }
    }

    /// <summary>The device went away: its locked messages become deliverable again (on its next connection).</summary>
    public void AbandonLocked(string deviceId)
    {
        lock (gate)
        {
            if (queues.TryGetValue(deviceId, out var queue))
            {
                foreach (var message in queue)
                {
                    message.LockedUntilUtc = null;
                }
            }
        }
    }

    public int QueuedCount(string deviceId)
    {
        lock (gate)
        {
            return queues.TryGetValue(deviceId, out var queue) ? queue.Count : 0;
        }
    }

    /// <summary>Devices whose locks ran out: their messages should be sent again.</summary>
    public List<string> DevicesWithExpiredLocks()
    {
        var now = Now;
        lock (gate)
        {
            return queues.Where(q => q.Value.Any(m => m.LockedUntilUtc is { } until && until <= now)).Select(q => q.Key).ToList();
        }
    }

    // ---------------------------------------------------------------- telemetry

    /// <summary>Rows the store deletes at a time once they are past the retention (it holds at most this many more).</summary>
    public const int TelemetryPruneStep = 1000;

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

    // ---------------------------------------------------------------- helpers

    private void DropExpired(List<CloudToDeviceMessage> queue)
    {
        var now = Now;
        foreach (var expired in queue.Where(m => m.ExpiryTimeUtc <= now).ToList())
        {
            queue.Remove(expired);
            store.DeleteCloudToDevice(expired.SequenceNumber);
            AddFeedback(expired, "Expired");
        }
    }

    // Delivery feedback the sender asked for with iothub-ack (positive: Success; negative: Expired, DeliveryCountExceeded).
    // Kept, in memory and on disk alike, until a reader takes it (at most 10,000 waiting: the oldest are dropped). Called under the gate.
    private void AddFeedback(CloudToDeviceMessage message, string status)
    {
        var wanted = message.Ack switch
        {
            "full" => true,
            "positive" => status == "Success",
            "negative" => status != "Success",
            _ => false,
        };
        if (!wanted)
        {
            return;
        }

        var record = new CloudToDeviceFeedback(nextFeedbackSequence++, message.MessageId, message.DeviceId, status, Now);
        store.SaveFeedback(record);
        feedback.Add(record);
        if (feedback.Count > MaxFeedbackWaiting)
        {
            store.DeleteFeedback(feedback[0].SequenceNumber);
            feedback.RemoveAt(0);
        }

        feedbackArrivals.TakeWaiters()?.TrySetResult();
    }

    /// <summary>
    /// Takes up to <paramref name="max"/> waiting feedback records (oldest first), waiting up to <paramref name="wait"/>
    /// for one. Taken records are gone unless given back with <see cref="ReturnFeedback"/> (a reader that did not complete them).
    /// </summary>
    public async Task<List<CloudToDeviceFeedback>> TakeFeedbackAsync(int max, TimeSpan wait, CancellationToken cancellationToken = default)
    {
        return await feedbackArrivals.WaitForAsync(gate, () =>
        {
            var taken = feedback.Take(max).ToList();
            feedback.RemoveRange(0, taken.Count);
            foreach (var record in taken)
            {
                store.DeleteFeedback(record.SequenceNumber);
            }

            return taken;
        }, wait, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Puts taken records back in order (a reader abandoned them or went away before completing them).</summary>
    public void ReturnFeedback(IReadOnlyCollection<CloudToDeviceFeedback> records)
    {
        if (records.Count == 0)
        {
            return;
        }

        TaskCompletionSource? signal;
        lock (gate)
        {
            foreach (var record in records)
            {
                store.SaveFeedback(record);
            }

            feedback.AddRange(records);
            feedback.Sort((a, b) => a.SequenceNumber.CompareTo(b.SequenceNumber));
            signal = feedbackArrivals.TakeWaiters();
        }

        signal?.TrySetResult();
    }

    private static void IdentityValidatorCheck(string deviceId)
    {
        if (!IdentityValidator.IsValidDeviceId(deviceId))
        {
            throw HubError.BadRequest("The device ID is not valid: up to 128 ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ ' +");
        }
    }

    private static void CheckKey(string? key)
    {
        if (key is null)
        {
            return;
        }

        Span<byte> buffer = stackalloc byte[128];
        if (!Convert.TryFromBase64String(key, buffer, out var written) || written < 16 || written > 64)
        {
            throw HubError.BadRequest("A symmetric key must be base64 of 16 to 64 bytes.");
        }
    }

    private static JsonObject Clean(JsonObject section, bool keepNulls = false)
    {
        var copy = (JsonObject)section.DeepClone();
        copy.Remove("$version");
        copy.Remove("$metadata");
        if (!keepNulls)
        {
            foreach (var name in copy.Where(p => p.Value is null).Select(p => p.Key).ToList())
            {
                copy.Remove(name);
            }
        }

        return copy;
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

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    // If-Match per RFC 9110 §13.1.1: "*" or a list of entity tags. The SDKs quote both ("*" included: Node's _ensureQuoted,
    // the C# SDK's ETagHolder); bare values are accepted too. Weak tags (W/"…") never match a strong comparison.
    private static bool IsWildcard(string ifMatch) => ifMatch.Split(',').Any(tag => tag.Trim() is "*" or "\"*\"");

    private static bool ETagMatches(string ifMatch, string current) =>
        ifMatch.Split(',').Select(tag => tag.Trim()).Any(tag => tag is "*" or "\"*\"" || (!tag.StartsWith("W/", StringComparison.Ordinal) && tag.Trim('"') == current));

    private static string DerivePolicyKey(string ownerKey, string label) =>
        Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(SharedAccessKeys.Decode(ownerKey, "OwnerKey"), System.Text.Encoding.UTF8.GetBytes(label)));

    private static DeviceIdentity Copy(DeviceIdentity d) => new()
    {
        DeviceId = d.DeviceId,
        ModuleId = d.ModuleId,
        GenerationId = d.GenerationId,
        ETag = d.ETag,
        Enabled = d.Enabled,
        StatusReason = d.StatusReason,
        AuthType = d.AuthType,
        PrimaryKey = d.PrimaryKey,
        SecondaryKey = d.SecondaryKey,
        PrimaryThumbprint = d.PrimaryThumbprint,
        SecondaryThumbprint = d.SecondaryThumbprint,
        StatusUpdatedTime = d.StatusUpdatedTime,
        LastActivityTime = d.LastActivityTime,
        ConnectionStateUpdatedTime = d.ConnectionStateUpdatedTime,
        Connected = d.Connected,
        Desired = d.Desired,
        Reported = d.Reported,
        DesiredMetadata = d.DesiredMetadata,
        ReportedMetadata = d.ReportedMetadata,
        Tags = d.Tags,
        DesiredVersion = d.DesiredVersion,
        ReportedVersion = d.ReportedVersion,
        TwinVersion = d.TwinVersion,
        TwinETag = d.TwinETag,
    };

    internal static string IsoTime(DateTime t) => t == DateTime.MinValue ? "0001-01-01T00:00:00Z" : t.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", CultureInfo.InvariantCulture);

    public static JsonObject DeviceJson(DeviceIdentity d) => WithModuleId(d, new JsonObject
    {
        ["deviceId"] = d.DeviceId,
        ["generationId"] = d.GenerationId,
        ["etag"] = d.ETag,
        ["connectionState"] = d.Connected ? "Connected" : "Disconnected",
        ["status"] = d.Enabled ? "enabled" : "disabled",
        ["statusReason"] = d.StatusReason,
        ["connectionStateUpdatedTime"] = IsoTime(d.ConnectionStateUpdatedTime),
        ["statusUpdatedTime"] = IsoTime(d.StatusUpdatedTime),
        ["lastActivityTime"] = IsoTime(d.LastActivityTime),
        ["cloudToDeviceMessageCount"] = 0,
        ["authentication"] = new JsonObject
        {
            ["symmetricKey"] = new JsonObject { ["primaryKey"] = d.PrimaryKey, ["secondaryKey"] = d.SecondaryKey },
            ["x509Thumbprint"] = new JsonObject { ["primaryThumbprint"] = d.PrimaryThumbprint, ["secondaryThumbprint"] = d.SecondaryThumbprint },
            ["type"] = d.AuthType == DeviceAuthType.Sas ? "sas" : "selfSigned",
        },
        ["capabilities"] = new JsonObject { ["iotEdge"] = false },
    });

    public static JsonObject TwinJson(DeviceIdentity d) => WithModuleId(d, new JsonObject
    {
        ["deviceId"] = d.DeviceId,
        ["etag"] = d.TwinETag,
        ["deviceEtag"] = d.ETag,
        ["status"] = d.Enabled ? "enabled" : "disabled",
        ["statusUpdateTime"] = IsoTime(d.StatusUpdatedTime),
        ["connectionState"] = d.Connected ? "Connected" : "Disconnected",
        ["lastActivityTime"] = IsoTime(d.LastActivityTime),
        ["cloudToDeviceMessageCount"] = 0,
        ["modelId"] = "",
        ["authenticationType"] = d.AuthType == DeviceAuthType.Sas ? "sas" : "selfSigned",
        ["x509Thumbprint"] = new JsonObject { ["primaryThumbprint"] = d.PrimaryThumbprint, ["secondaryThumbprint"] = d.SecondaryThumbprint },
        ["version"] = d.TwinVersion,
        ["tags"] = d.Tags.DeepClone(),
        ["properties"] = new JsonObject
        {
            ["desired"] = TwinDocument.WithVersion(d.Desired, d.DesiredVersion, d.DesiredMetadata),
            ["reported"] = TwinDocument.WithVersion(d.Reported, d.ReportedVersion, d.ReportedMetadata),
        },
        ["capabilities"] = new JsonObject { ["iotEdge"] = false },
    });

    private static JsonObject WithModuleId(DeviceIdentity d, JsonObject json)
    {
        if (d.ModuleId is not null)
        {
            json["moduleId"] = d.ModuleId;
            json.Remove("capabilities");
        }

        return json;
    }
}

/// <summary>One delivery outcome of a C2D message, as the hub's feedback endpoint reports it.</summary>
internal sealed record CloudToDeviceFeedback(long SequenceNumber, string OriginalMessageId, string DeviceId, string StatusCode, DateTime EnqueuedTimeUtc);
