using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service.Registry;

/// <summary>What <see cref="DeviceRegistryWriter"/> does with each device it is given.</summary>
public enum RegistryWriteMode
{
    /// <summary>Create devices that do not exist; leave existing ones as they are (Unchanged).</summary>
    Create,

    /// <summary>Create devices that do not exist; update existing ones to match the input (keys not given are kept).</summary>
    CreateOrUpdate,

    /// <summary>Remove devices (only if unchanged since their ETag, when one is given and not forced); absent ones are Absent.</summary>
    Remove,
}

/// <summary>What happened to one device.</summary>
public enum RegistryAction
{
    Created,
    Updated,
    Unchanged,
    Removed,
    Absent,
    Failed,
}

/// <summary>How a <see cref="DeviceRegistryWriter"/> batches and what it does.</summary>
public sealed class DeviceRegistryWriterOptions
{
    public RegistryWriteMode Mode { get; init; } = RegistryWriteMode.Create;

    /// <summary>With <see cref="RegistryWriteMode.Remove"/>: remove whatever the device's ETag.</summary>
    public bool IgnoreETags { get; init; }

    /// <summary>Bulk calls in flight at once (each up to <see cref="BatchSize"/> devices). Default 4.</summary>
    public int MaxParallelCalls { get; init; } = 4;

    /// <summary>Devices per bulk call, 1 to 100 (the hub's limit). Default 100.</summary>
    public int BatchSize { get; init; } = IoTHubServiceClient.MaxBulkDevices;
}

/// <summary>The outcome for one input, in input order. <see cref="Device"/> carries keys when known (secret).</summary>
public sealed record DeviceOutcome(int Index, object Target, RegistryAction Action, ServiceDevice? Device, Exception? Error);

/// <summary>
/// Creates, updates or removes a stream of devices the way the hub is meant to be used at scale: devices are validated as
/// they come (a bad one fails alone, naming its row), gathered into bulk registry calls of up to 100, and each gets one
/// outcome in input order — Created, Updated, Unchanged, Removed, Absent, or Failed with the hub's per-device error code.
/// Re-runs are idempotent: an existing device is read back (Unchanged, with its keys) or, in CreateOrUpdate mode, updated
/// only when it differs. New devices get their keys here (as the hub would), so their connection strings are known without
/// reading them back. Throttling is waited out by the client (<see cref="IoTHubServiceOptions.MaxThrottledWait"/>); a call
/// that still fails fails each of its devices with the reason.
/// </summary>
public sealed class DeviceRegistryWriter : IDisposable
{
    private readonly IoTHubServiceClient service;
    private readonly DeviceRegistryWriterOptions options;
    private readonly CancellationToken cancellationToken;
    private readonly SemaphoreSlim calls;
    private readonly Queue<Slot> order = new();
    private readonly List<(Slot Slot, DeviceSpec Spec)> pending = [];
    private readonly HashSet<string> pendingIds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Task> inFlight = new(StringComparer.Ordinal);
    private readonly long started;
    private int completed;

    public DeviceRegistryWriter(IoTHubServiceClient service, DeviceRegistryWriterOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.BatchSize, IoTHubServiceClient.MaxBulkDevices);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxParallelCalls, 1);
        this.service = service;
        this.options = options;
        this.cancellationToken = cancellationToken;
        calls = new SemaphoreSlim(options.MaxParallelCalls, options.MaxParallelCalls);
        started = service.TimeProvider.GetTimestamp();
    }

    private sealed record Slot(int Index, object Target)
    {
        public TaskCompletionSource<DeviceOutcome> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Inputs given so far.</summary>
    public int Added { get; private set; }

    /// <summary>Outcomes handed out so far by <see cref="TakeReady"/>.</summary>
    public int Completed => completed;

    /// <summary>Outcomes handed out per second so far (by the client's clock).</summary>
    public double Rate => completed / Math.Max(0.001, service.TimeProvider.GetElapsedTime(started).TotalSeconds);

    /// <summary>Until when the hub throttles registry operations, or null.</summary>
    public DateTimeOffset? ThrottledUntil => service.RegistryThrottledUntil;

    /// <summary>The input the next outcome belongs to, or null when every outcome has been handed out.</summary>
    public object? NextTarget => order.Count > 0 ? order.Peek().Target : null;

    /// <summary>Inputs given whose outcome has not been handed out yet.</summary>
    public int Outstanding => order.Count;

    /// <summary>
    /// Takes one input. Never throws for a bad input: it becomes a Failed outcome in its place. A valid one is queued only if
    /// <paramref name="shouldProcess"/> (asked with its device id) agrees; otherwise it has no outcome.
    /// </summary>
    public void Add(DeviceInput input, Func<string, bool>? shouldProcess = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        var index = Added + 1;
        DeviceSpec spec;
        try
        {
            spec = options.Mode == RegistryWriteMode.Remove ? new DeviceInput { DeviceId = input.DeviceId, ETag = input.ETag }.Validate(index) : input.Validate(index);
        }
        catch (IoTHubMqttException ex)
        {
            AddFailed(input.TargetFor(index), ex);
            return;
        }

        if (shouldProcess is not null && !shouldProcess(spec.DeviceId))
        {
            return;
        }

        Added++;
        var slot = new Slot(Added, spec.DeviceId);
        order.Enqueue(slot);

        if (pendingIds.Contains(spec.DeviceId))
        {
            Flush(); // the same device twice: the second goes in a later call, after the first
        }

        pending.Add((slot, spec));
        pendingIds.Add(spec.DeviceId);
        if (pending.Count >= options.BatchSize)
        {
            Flush();
        }
    }

    /// <summary>An input that failed before it could be given (e.g. a value the caller could not convert): it keeps its place.</summary>
    public void AddFailed(object target, Exception error)
    {
        var slot = new Slot(++Added, target);
        order.Enqueue(slot);
        slot.Outcome.SetResult(new DeviceOutcome(slot.Index, target, RegistryAction.Failed, null, error));
    }

    /// <summary>Sends what is gathered (the last, partial batch). Call when the input has ended.</summary>
    public void Complete() => Flush();

    /// <summary>Outcomes at the head of the input order that are ready now.</summary>
    public IEnumerable<DeviceOutcome> TakeReady()
    {
        while (order.Count > 0 && order.Peek().Outcome.Task.IsCompleted)
        {
            completed++;
            yield return order.Dequeue().Outcome.Task.Result;
        }
    }

    /// <summary>Completes when the next outcome in order is ready (at once when none is left). Sends a partial batch it would wait for.</summary>
    public Task WaitForNextAsync(CancellationToken waitCancellation)
    {
        if (order.Count == 0)
        {
            return Task.CompletedTask;
        }

        var next = order.Peek();
        if (!next.Outcome.Task.IsCompleted && pending.Any(p => ReferenceEquals(p.Slot, next)))
        {
            Flush();
        }

        return next.Outcome.Task.WaitAsync(waitCancellation);
    }

    private void Flush()
    {
        if (pending.Count == 0)
        {
            return;
        }

        var batch = pending.ToList();
        pending.Clear();
        pendingIds.Clear();
        var before = batch.Select(b => b.Spec.DeviceId).Where(inFlight.ContainsKey).Select(id => inFlight[id]).Distinct().ToArray();
        var task = RunBatchAsync(batch, before);
        foreach (var (_, spec) in batch)
        {
            inFlight[spec.DeviceId] = task;
        }
    }

    private async Task RunBatchAsync(List<(Slot Slot, DeviceSpec Spec)> batch, Task[] before)
    {
        try
        {
            await Task.WhenAll(before).ConfigureAwait(false);
            await calls.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var outcomes = options.Mode == RegistryWriteMode.Remove
                    ? await RemoveAsync(batch).ConfigureAwait(false)
                    : await CreateAsync(batch).ConfigureAwait(false);
                foreach (var (slot, _) in batch)
                {
                    slot.Outcome.TrySetResult(outcomes.TryGetValue(slot, out var outcome) ? outcome
                        : new DeviceOutcome(slot.Index, slot.Target, RegistryAction.Failed, null, new IoTHubMqttException(ErrorIds.RegistryOperationFailed, IoTHubErrorKind.ProtocolError,
                            $"The hub's answer did not account for device '{slot.Target}'.", null, slot.Target)));
                }
            }
            finally
            {
                calls.Release();
            }
        }
        catch (Exception ex)
        {
            // The call as a whole failed (throttled past the limit, unreachable, cancelled): every device of it says so.
            foreach (var (slot, _) in batch)
            {
                slot.Outcome.TrySetResult(new DeviceOutcome(slot.Index, slot.Target, RegistryAction.Failed, null, ex));
            }
        }
    }

    private DeviceOutcome Outcome(Slot slot, RegistryAction action, ServiceDevice? device, Exception? error = null) => new(slot.Index, slot.Target, action, device, error);

    private async Task<Dictionary<Slot, DeviceOutcome>> CreateAsync(List<(Slot Slot, DeviceSpec Spec)> batch)
    {
        var outcomes = new Dictionary<Slot, DeviceOutcome>();
        var existing = new List<(Slot Slot, DeviceSpec Spec)>();
        if (batch.Count == 1)
        {
            // One device: the single-device call answers with the whole device, ETag included, for the same cost.
            var (slot, spec) = batch[0];
            try
            {
                var created = await service.CreateDeviceAsync(spec, cancellationToken).ConfigureAwait(false);
                outcomes[slot] = Outcome(slot, RegistryAction.Created, await WithTagsAsync(created, spec.Tags).ConfigureAwait(false));
            }
            catch (IoTHubMqttException ex) when (ex.ErrorId == ErrorIds.DeviceAlreadyExists)
            {
                existing.Add(batch[0]);
            }
            catch (IoTHubMqttException ex)
            {
                outcomes[slot] = Outcome(slot, RegistryAction.Failed, null, ex);
            }
        }
        else
        {
            var operations = batch.Select(b => new RegistryOperation(RegistryImportMode.Create, b.Spec)
            {
                GeneratedKeys = NeedsKeys(b.Spec) ? (SharedAccessKeys.Generate(), SharedAccessKeys.Generate()) : null,
            }).ToList();
            var result = await service.BulkRegistryAsync(operations, cancellationToken).ConfigureAwait(false);
            var errors = Errors(result);
            for (var i = 0; i < batch.Count; i++)
            {
                var (slot, spec) = batch[i];
                if (!errors.TryGetValue(spec.DeviceId, out var error))
                {
                    outcomes[slot] = Outcome(slot, RegistryAction.Created, FromSpec(spec, operations[i].GeneratedKeys));
                }
                else if (error.ErrorCode == "DeviceAlreadyExists")
                {
                    existing.Add(batch[i]);
                }
                else
                {
                    outcomes[slot] = Outcome(slot, RegistryAction.Failed, null, error.ToException("Create device"));
                }
            }
        }

        if (existing.Count > 0)
        {
            foreach (var (slot, outcome) in await ExistingAsync(existing).ConfigureAwait(false))
            {
                outcomes[slot] = outcome;
            }
        }

        return outcomes;
    }

    /// <summary>Devices that already exist: read each; keep it (Unchanged), or update it where it differs.</summary>
    private async Task<Dictionary<Slot, DeviceOutcome>> ExistingAsync(List<(Slot Slot, DeviceSpec Spec)> items)
    {
        var outcomes = new Dictionary<Slot, DeviceOutcome>();
        // Reads of existing devices, a few at a time (each is one registry operation for the hub's throttle).
        var reads = new (Slot Slot, DeviceSpec Spec, ServiceDevice? Device, Exception? Error)[items.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, items.Count), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (i, ct) =>
        {
            var (slot, spec) = items[i];
            try
            {
                reads[i] = (slot, spec, await service.GetDeviceAsync(spec.DeviceId, ct).ConfigureAwait(false), null);
            }
            catch (IoTHubMqttException ex)
            {
                reads[i] = (slot, spec, null, ex);
            }
        }).ConfigureAwait(false);

        var updates = new List<(Slot Slot, DeviceSpec Merged)>();
        foreach (var (slot, spec, device, error) in reads)
        {
            if (device is null)
            {
                outcomes[slot] = Outcome(slot, RegistryAction.Failed, null, error);
            }
            else if (options.Mode != RegistryWriteMode.CreateOrUpdate)
            {
                outcomes[slot] = Outcome(slot, RegistryAction.Unchanged, device);
            }
            else
            {
                var merged = Merge(spec, device);
                if (spec.Tags is null && SameIdentity(merged, device))
                {
                    outcomes[slot] = Outcome(slot, RegistryAction.Unchanged, device);
                }
                else
                {
                    updates.Add((slot, merged));
                }
            }
        }

        if (updates.Count == 1)
        {
            var (slot, merged) = updates[0];
            try
            {
                var updated = await service.UpdateDeviceAsync(merged, merged.ETag, cancellationToken).ConfigureAwait(false);
                outcomes[slot] = Outcome(slot, RegistryAction.Updated, await WithTagsAsync(updated, merged.Tags).ConfigureAwait(false));
            }
            catch (IoTHubMqttException ex)
            {
                outcomes[slot] = Outcome(slot, RegistryAction.Failed, null, ex);
            }
        }
        else if (updates.Count > 1)
        {
            var operations = updates.Select(u => new RegistryOperation(RegistryImportMode.UpdateIfMatchETag, WithoutTags(u.Merged))).ToList();
            var errors = Errors(await service.BulkRegistryAsync(operations, cancellationToken).ConfigureAwait(false));
            foreach (var (slot, merged) in updates)
            {
                if (errors.TryGetValue(merged.DeviceId, out var error))
                {
                    outcomes[slot] = Outcome(slot, RegistryAction.Failed, null, error.ToException("Update device"));
                    continue;
                }

                try
                {
                    outcomes[slot] = Outcome(slot, RegistryAction.Updated, await WithTagsAsync(FromSpec(merged, null), merged.Tags).ConfigureAwait(false));
                }
                catch (IoTHubMqttException ex)
                {
                    outcomes[slot] = Outcome(slot, RegistryAction.Failed, null, ex);
                }
            }
        }

        return outcomes;
    }

    private async Task<Dictionary<Slot, DeviceOutcome>> RemoveAsync(List<(Slot Slot, DeviceSpec Spec)> batch)
    {
        var outcomes = new Dictionary<Slot, DeviceOutcome>();
        string? ETagOf(DeviceSpec spec) => options.IgnoreETags ? null : spec.ETag;
        if (batch.Count == 1)
        {
            var (slot, spec) = batch[0];
            try
            {
                await service.DeleteDeviceAsync(spec.DeviceId, ETagOf(spec), cancellationToken).ConfigureAwait(false);
                outcomes[slot] = Outcome(slot, RegistryAction.Removed, Bare(spec.DeviceId));
            }
            catch (IoTHubMqttException ex) when (ex.ErrorId == ErrorIds.DeviceNotFound)
            {
                outcomes[slot] = Outcome(slot, RegistryAction.Absent, Bare(spec.DeviceId));
            }
            catch (IoTHubMqttException ex)
            {
                outcomes[slot] = Outcome(slot, RegistryAction.Failed, null, ex);
            }

            return outcomes;
        }

        var operations = batch.Select(b => new RegistryOperation(ETagOf(b.Spec) is null ? RegistryImportMode.Delete : RegistryImportMode.DeleteIfMatchETag, b.Spec)).ToList();
        var errors = Errors(await service.BulkRegistryAsync(operations, cancellationToken).ConfigureAwait(false));
        foreach (var (slot, spec) in batch)
        {
            outcomes[slot] = !errors.TryGetValue(spec.DeviceId, out var error) ? Outcome(slot, RegistryAction.Removed, Bare(spec.DeviceId))
                : error.ErrorCode == "DeviceNotFound" ? Outcome(slot, RegistryAction.Absent, Bare(spec.DeviceId))
                : Outcome(slot, RegistryAction.Failed, null, error.ToException("Remove device"));
        }

        return outcomes;
    }

    private static Dictionary<string, DeviceRegistryError> Errors(BulkRegistryResult result)
    {
        var errors = new Dictionary<string, DeviceRegistryError>(StringComparer.Ordinal);
        foreach (var error in result.Errors.Where(e => e.ModuleId is null))
        {
            errors.TryAdd(error.DeviceId, error);
        }

        return errors;
    }

    private async Task<ServiceDevice> WithTagsAsync(ServiceDevice device, JsonObject? tags)
    {
        if (tags is null)
        {
            return device;
        }

        var twin = await service.UpdateTagsAsync(device.DeviceId, tags, null, cancellationToken).ConfigureAwait(false);
        return Copy(device, twin.Tags);
    }

    private static bool NeedsKeys(DeviceSpec spec) => spec.AuthenticationType is null or "sas" && spec.PrimaryKey is null && spec.SecondaryKey is null;

    private ServiceDevice FromSpec(DeviceSpec spec, (string Primary, string Secondary)? generated) => new()
    {
        DeviceId = spec.DeviceId,
        HostName = service.HostName,
        Status = spec.Status ?? "enabled",
        AuthenticationType = spec.AuthenticationType ?? "sas",
        PrimaryKey = spec.AuthenticationType == "selfSigned" ? null : spec.PrimaryKey ?? generated?.Primary,
        SecondaryKey = spec.AuthenticationType == "selfSigned" ? null : spec.SecondaryKey ?? generated?.Secondary,
        PrimaryThumbprint = spec.PrimaryThumbprint,
        SecondaryThumbprint = spec.SecondaryThumbprint,
        Tags = spec.Tags?.DeepClone() as JsonObject,
    };

    private ServiceDevice Bare(string deviceId) => new() { DeviceId = deviceId, HostName = service.HostName };

    private static DeviceSpec Merge(DeviceSpec spec, ServiceDevice existing)
    {
        var type = spec.AuthenticationType ?? existing.AuthenticationType;
        var sameType = type == existing.AuthenticationType;
        return new DeviceSpec
        {
            DeviceId = spec.DeviceId,
            Status = spec.Status ?? existing.Status,
            AuthenticationType = type,
            PrimaryKey = type == "selfSigned" ? null : spec.PrimaryKey ?? (sameType ? existing.PrimaryKey : null),
            SecondaryKey = type == "selfSigned" ? null : spec.SecondaryKey ?? (sameType ? existing.SecondaryKey : null),
            PrimaryThumbprint = type == "selfSigned" ? spec.PrimaryThumbprint ?? existing.PrimaryThumbprint : null,
            SecondaryThumbprint = type == "selfSigned" ? spec.SecondaryThumbprint ?? (spec.PrimaryThumbprint is null ? existing.SecondaryThumbprint : null) : null,
            Tags = spec.Tags,
            ETag = existing.ETag,
        };
    }

    private static bool SameIdentity(DeviceSpec merged, ServiceDevice existing) =>
        merged.Status == existing.Status &&
        merged.AuthenticationType == existing.AuthenticationType &&
        merged.PrimaryKey == existing.PrimaryKey &&
        merged.SecondaryKey == existing.SecondaryKey &&
        string.Equals(merged.PrimaryThumbprint, existing.PrimaryThumbprint, StringComparison.OrdinalIgnoreCase) &&
        string.Equals(merged.SecondaryThumbprint, existing.SecondaryThumbprint, StringComparison.OrdinalIgnoreCase);

    private static DeviceSpec WithoutTags(DeviceSpec spec) => new()
    {
        DeviceId = spec.DeviceId,
        Status = spec.Status,
        AuthenticationType = spec.AuthenticationType,
        PrimaryKey = spec.PrimaryKey,
        SecondaryKey = spec.SecondaryKey,
        PrimaryThumbprint = spec.PrimaryThumbprint,
        SecondaryThumbprint = spec.SecondaryThumbprint,
        ETag = spec.ETag,
    };

    private static ServiceDevice Copy(ServiceDevice d, JsonObject? tags) => d.WithETagAndTags(d.ETag, tags);

    public void Dispose() => calls.Dispose();
}
