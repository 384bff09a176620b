using Azure.Messaging.EventHubs.Primitives;
using Azure.Messaging.EventHubs.Processor;

namespace IoTHubMqtt.Core.Service;

/// <summary>A reader's request for a partition that another reader owns and still renews.</summary>
internal sealed record HandoverRequest(string PartitionId, string Requester, DateTimeOffset Modified);

/// <summary>Where the readers of a checkpoint store leave their requests for each other's partitions.</summary>
internal interface IHandoverRequests
{
    Task<IReadOnlyList<HandoverRequest>> ListRequestsAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, CancellationToken cancellationToken);

    Task RequestAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, string requester, CancellationToken cancellationToken);

    Task ClearRequestAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, CancellationToken cancellationToken);
}

/// <summary>
/// The checkpoint store as the readers of this module share it: partitions change hands without a message read twice.
/// The Event Hubs load balancer takes a partition from a reader that owns more than its share by overwriting its ownership
/// (a steal); the old owner notices only at its next renewal, and the new one starts at the last checkpoint, so what the
/// old owner handed on since then comes again. Here a steal from a reader whose ownership is still fresh becomes a request
/// (<see cref="IHandoverRequests"/>); the owner answers it at its next renewal: it stops delivering the partition's events,
/// writes the checkpoint of what it delivered, gives the partition up, and does not claim it back for a while; the
/// requester then claims it as an unowned partition and starts exactly after the last event delivered. A reader that
/// stopped renewing (it died) loses its partitions when its ownership expires, as with every Event Hubs processor; a
/// processor of another kind (the .NET or JavaScript Event Hubs processor) still steals, and its new partitions start at
/// the last checkpoint.
/// </summary>
internal sealed class HandoverCheckpointStore : CheckpointStore
{
    private readonly CheckpointStore inner;
    private readonly IHandoverRequests requests;
    private readonly string identifier;
    private readonly TimeSpan expiration;
    private readonly TimeSpan interval;
    private readonly TimeSpan pause;
    private readonly Func<string, CancellationToken, Task> handOver;
    private readonly Action progressed;
    private readonly Action<string>? log;
    private readonly object gate = new();
    private readonly Dictionary<string, EventProcessorPartitionOwnership> seen = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string?> held = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> released = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> asked = new(StringComparer.Ordinal);

    /// <param name="inner">The store (it also keeps the requests).</param>
    /// <param name="identifier">This reader's name in the ownership records.</param>
    /// <param name="expiration">How long an ownership that is not renewed stays the owner's.</param>
    /// <param name="interval">How often the readers renew and balance.</param>
    /// <param name="handOver">Stops delivering a partition's events and writes its checkpoint, before it is given up.</param>
    /// <param name="progressed">Called when the store answered (the reader counts failures in a row).</param>
    /// <param name="log">Verbose messages.</param>
    public HandoverCheckpointStore(CheckpointStore inner, string identifier, TimeSpan expiration, TimeSpan interval,
        Func<string, CancellationToken, Task> handOver, Action progressed, Action<string>? log)
    {
        this.inner = inner;
        requests = (IHandoverRequests)inner;
        this.identifier = identifier;
        this.expiration = expiration;
        this.interval = interval;
        this.handOver = handOver;
        this.progressed = progressed;
        this.log = log;
        pause = TimeSpan.FromMilliseconds(Math.Clamp(interval.TotalMilliseconds / 4, 50, 2000));
    }

    public CheckpointStore Inner => inner;

    public override async Task<IEnumerable<EventProcessorPartitionOwnership>> ListOwnershipAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, CancellationToken cancellationToken)
    {
        var list = (await inner.ListOwnershipAsync(fullyQualifiedNamespace, eventHubName, consumerGroup, cancellationToken).ConfigureAwait(false)).ToList();
        progressed();
        lock (gate)
        {
            seen.Clear();
            foreach (var ownership in list)
            {
                seen[ownership.PartitionId] = ownership;
                if (!string.IsNullOrEmpty(ownership.OwnerIdentifier) && ownership.OwnerIdentifier != identifier)
                {
                    released.Remove(ownership.PartitionId); // taken by the reader it was given up for
                }
            }
        }

        return list;
    }

    public override async Task<IEnumerable<EventProcessorPartitionOwnership>> ClaimOwnershipAsync(IEnumerable<EventProcessorPartitionOwnership> desiredOwnership, CancellationToken cancellationToken)
    {
        var wants = desiredOwnership.ToList();
        bool Renews(EventProcessorPartitionOwnership want)
        {
            lock (gate)
            {
                return want.OwnerIdentifier == identifier && held.TryGetValue(want.PartitionId, out var version) && version == want.Version;
            }
        }

        var renewals = wants.Where(Renews).ToList();
        IReadOnlyList<HandoverRequest> open = renewals.Count > 0
            ? await requests.ListRequestsAsync(wants[0].FullyQualifiedNamespace, wants[0].EventHubName, wants[0].ConsumerGroup, cancellationToken).ConfigureAwait(false)
            : [];
        var now = DateTimeOffset.UtcNow;
        var pass = new List<EventProcessorPartitionOwnership>();
        var refused = false;
        foreach (var want in wants)
        {
            var partition = want.PartitionId;
            if (want.OwnerIdentifier != identifier)
            {
                if (string.IsNullOrEmpty(want.OwnerIdentifier))
                {
                    lock (gate)
                    {
                        held.Remove(partition); // given up (the reader stops)
                    }
                }

                pass.Add(want);
            }
            else if (renewals.Contains(want))
            {
                var request = open.FirstOrDefault(r => r.PartitionId == partition && r.Requester != identifier && now - r.Modified < expiration);
                if (request is null)
                {
                    pass.Add(want);
                    continue;
                }

                await handOver(partition, cancellationToken).ConfigureAwait(false);
                await inner.ClaimOwnershipAsync([With(want, "")], cancellationToken).ConfigureAwait(false);
                lock (gate)
                {
                    held.Remove(partition);
                    released[partition] = now + expiration;
                }

                await requests.ClearRequestAsync(want.FullyQualifiedNamespace, want.EventHubName, want.ConsumerGroup, partition, cancellationToken).ConfigureAwait(false);
                log?.Invoke($"Read telemetry: partition {partition} handed over to reader {request.Requester} at the checkpoint of what was read here.");
            }
            else if (await AskAsync(want, now, cancellationToken).ConfigureAwait(false))
            {
                refused = true;
            }
            else
            {
                pass.Add(want);
            }
        }

        var claimed = pass.Count == 0 ? [] : (await inner.ClaimOwnershipAsync(pass, cancellationToken).ConfigureAwait(false)).ToList();
        var cleared = new List<EventProcessorPartitionOwnership>();
        lock (gate)
        {
            foreach (var want in renewals)
            {
                held.Remove(want.PartitionId); // renewed below, or lost (another reader changed it)
            }

            foreach (var ownership in claimed.Where(c => c.OwnerIdentifier == identifier))
            {
                held[ownership.PartitionId] = ownership.Version;
                if (asked.Remove(ownership.PartitionId))
                {
                    cleared.Add(ownership);
                }
            }
        }

        foreach (var ownership in cleared)
        {
            await requests.ClearRequestAsync(ownership.FullyQualifiedNamespace, ownership.EventHubName, ownership.ConsumerGroup, ownership.PartitionId, cancellationToken).ConfigureAwait(false);
        }

        if (refused)
        {
            // The balancer tries again at once while it is short of partitions: the owner answers at its next renewal.
            await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
        }

        return claimed;
    }

    /// <summary>
    /// A claim of a partition this reader gave up a moment ago, or that a reader with fresh ownership holds: asks for it
    /// instead (once an interval) and answers true (not claimed now).
    /// </summary>
    private async Task<bool> AskAsync(EventProcessorPartitionOwnership want, DateTimeOffset now, CancellationToken cancellationToken)
    {
        bool write;
        lock (gate)
        {
            if (released.TryGetValue(want.PartitionId, out var until) && until > now)
            {
                return true; // given to a reader that asked for it: it claims it next
            }

            if (!seen.TryGetValue(want.PartitionId, out var current) || string.IsNullOrEmpty(current.OwnerIdentifier) || current.OwnerIdentifier == identifier
                || now - current.LastModifiedTime >= expiration || current.Version != want.Version)
            {
                return false; // unowned or expired: claimed as usual
            }

            write = !asked.TryGetValue(want.PartitionId, out var at) || now - at >= interval;
            if (write)
            {
                asked[want.PartitionId] = now;
            }
        }

        if (write)
        {
            await requests.RequestAsync(want.FullyQualifiedNamespace, want.EventHubName, want.ConsumerGroup, want.PartitionId, identifier, cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    private static EventProcessorPartitionOwnership With(EventProcessorPartitionOwnership ownership, string owner) =>
        TelemetryCheckpoints.Ownership(ownership, owner, DateTimeOffset.UtcNow, ownership.Version);

    public override Task<EventProcessorCheckpoint> GetCheckpointAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, CancellationToken cancellationToken) =>
        inner.GetCheckpointAsync(fullyQualifiedNamespace, eventHubName, consumerGroup, partitionId, cancellationToken);

    public override Task UpdateCheckpointAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, string clientIdentifier, CheckpointPosition startingPosition, CancellationToken cancellationToken) =>
        inner.UpdateCheckpointAsync(fullyQualifiedNamespace, eventHubName, consumerGroup, partitionId, clientIdentifier, startingPosition, cancellationToken);
}
