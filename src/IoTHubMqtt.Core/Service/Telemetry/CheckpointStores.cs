using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Messaging.EventHubs.Consumer;
using Azure.Messaging.EventHubs.Primitives;
using Azure.Messaging.EventHubs.Processor;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service;

/// <summary>
/// Ownership and checkpoints of the partitions of consumer groups, as the Event Hubs processor keeps them: an ownership
/// claim succeeds only against the version the claimer read (optimistic concurrency), a checkpoint is the offset and
/// sequence number of the last event processed. The same rules in memory (one reader), in a JSON file and in blobs.
/// </summary>
internal sealed class CheckpointDocument
{
    private readonly Dictionary<string, (string Owner, DateTimeOffset Modified, string Version)> ownership = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string? Offset, long? Sequence, DateTimeOffset Modified)> checkpoints = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Requester, DateTimeOffset Modified)> requests = new(StringComparer.Ordinal);

    public static string Key(string ns, string eventHub, string group, string partition) =>
        $"{ns.ToLowerInvariant()}/{eventHub.ToLowerInvariant()}/{group.ToLowerInvariant()}/{partition}";

    public IEnumerable<EventProcessorPartitionOwnership> ListOwnership(string ns, string eventHub, string group)
    {
        var prefix = Key(ns, eventHub, group, "");
        return ownership.Where(o => o.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(o => new EventProcessorPartitionOwnership
        {
            FullyQualifiedNamespace = ns,
            EventHubName = eventHub,
            ConsumerGroup = group,
            PartitionId = o.Key[prefix.Length..],
            OwnerIdentifier = o.Value.Owner,
            LastModifiedTime = o.Value.Modified,
            Version = o.Value.Version,
        }).ToList();
    }

    public List<EventProcessorPartitionOwnership> Claim(IEnumerable<EventProcessorPartitionOwnership> desired)
    {
        var claimed = new List<EventProcessorPartitionOwnership>();
        foreach (var want in desired)
        {
            var key = Key(want.FullyQualifiedNamespace, want.EventHubName, want.ConsumerGroup, want.PartitionId);
            var exists = ownership.TryGetValue(key, out var current);
            if (exists ? want.Version != current.Version : want.Version is not null)
            {
                continue; // someone else changed it since the claimer read it
            }

            var now = DateTimeOffset.UtcNow;
            var version = Guid.NewGuid().ToString("N");
            ownership[key] = (want.OwnerIdentifier ?? "", now, version);
            claimed.Add(TelemetryCheckpoints.Ownership(want, want.OwnerIdentifier, now, version));
        }

        return claimed;
    }

    public EventProcessorCheckpoint? GetCheckpoint(string ns, string eventHub, string group, string partition) =>
        checkpoints.TryGetValue(Key(ns, eventHub, group, partition), out var c) ? TelemetryCheckpoints.ToCheckpoint(ns, eventHub, group, partition, c.Offset, c.Sequence, c.Modified) : null;

    public void SetCheckpoint(string ns, string eventHub, string group, string partition, CheckpointPosition position) =>
        checkpoints[Key(ns, eventHub, group, partition)] = (position.OffsetString, position.SequenceNumber, DateTimeOffset.UtcNow);

    public IReadOnlyList<HandoverRequest> ListRequests(string ns, string eventHub, string group)
    {
        var prefix = Key(ns, eventHub, group, "");
        return requests.Where(r => r.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(r => new HandoverRequest(r.Key[prefix.Length..], r.Value.Requester, r.Value.Modified)).ToList();
    }

    public void Request(string ns, string eventHub, string group, string partition, string requester) =>
        requests[Key(ns, eventHub, group, partition)] = (requester, DateTimeOffset.UtcNow);

    public bool ClearRequest(string ns, string eventHub, string group, string partition) => requests.Remove(Key(ns, eventHub, group, partition));

    public JsonObject ToJson() => new()
    {
        ["version"] = 1,
        ["ownership"] = new JsonArray(ownership.Select(o => (JsonNode)new JsonObject
        {
            ["partition"] = o.Key,
            ["ownerId"] = o.Value.Owner,
            ["lastModified"] = o.Value.Modified.ToString("O", CultureInfo.InvariantCulture),
            ["etag"] = o.Value.Version,
        }).ToArray()),
        ["checkpoints"] = new JsonArray(checkpoints.Select(c => (JsonNode)new JsonObject
        {
            ["partition"] = c.Key,
            ["offset"] = c.Value.Offset,
            ["sequenceNumber"] = c.Value.Sequence,
            ["lastModified"] = c.Value.Modified.ToString("O", CultureInfo.InvariantCulture),
        }).ToArray()),
        ["requests"] = new JsonArray(requests.Select(r => (JsonNode)new JsonObject
        {
            ["partition"] = r.Key,
            ["requester"] = r.Value.Requester,
            ["lastModified"] = r.Value.Modified.ToString("O", CultureInfo.InvariantCulture),
        }).ToArray()),
    };

    public static CheckpointDocument FromJson(JsonNode? json)
    {
        var document = new CheckpointDocument();
        if (json is null)
        {
            return document;
        }

        foreach (var o in json["ownership"]?.AsArray() ?? [])
        {
            document.ownership[(string)o!["partition"]!] = ((string?)o["ownerId"] ?? "", DateTimeOffset.Parse((string)o["lastModified"]!, CultureInfo.InvariantCulture), (string)o["etag"]!);
        }

        foreach (var c in json["checkpoints"]?.AsArray() ?? [])
        {
            document.checkpoints[(string)c!["partition"]!] = ((string?)c["offset"], (long?)c["sequenceNumber"], DateTimeOffset.Parse((string)c["lastModified"]!, CultureInfo.InvariantCulture));
        }

        foreach (var r in json["requests"]?.AsArray() ?? [])
        {
            document.requests[(string)r!["partition"]!] = ((string)r["requester"]!, DateTimeOffset.Parse((string)r["lastModified"]!, CultureInfo.InvariantCulture));
        }

        return document;
    }
}

internal static class TelemetryCheckpoints
{
    /// <summary>The ownership record of <paramref name="of"/>'s partition with this owner, time and version (what a store wrote).</summary>
    public static EventProcessorPartitionOwnership Ownership(EventProcessorPartitionOwnership of, string? owner, DateTimeOffset modified, string? version) => new()
    {
        FullyQualifiedNamespace = of.FullyQualifiedNamespace,
        EventHubName = of.EventHubName,
        ConsumerGroup = of.ConsumerGroup,
        PartitionId = of.PartitionId,
        OwnerIdentifier = owner,
        LastModifiedTime = modified,
        Version = version,
    };

    /// <summary>Where a checkpoint resumes: after its event (by offset when known, as the Event Hubs stores do).</summary>
    public static EventProcessorCheckpoint ToCheckpoint(string ns, string eventHub, string group, string partition, string? offset, long? sequence, DateTimeOffset? modified) => new()
    {
        FullyQualifiedNamespace = ns,
        EventHubName = eventHub,
        ConsumerGroup = group,
        PartitionId = partition,
        LastModified = modified,
        StartingPosition = offset is not null ? EventPosition.FromOffset(offset, isInclusive: false) : EventPosition.FromSequenceNumber(sequence ?? -1, isInclusive: false),
    };

    public static CheckpointStore Create(TelemetryCheckpointLocation? location) => location switch
    {
        null => new MemoryCheckpointStore(),
        { FilePath: { } path } => new FileCheckpointStore(path),
        { ContainerUri: { } uri } => new BlobCheckpointStore(new BlobContainerClient(uri)),
        _ => new BlobCheckpointStore(new BlobContainerClient(location.StorageConnectionString, location.ContainerName)),
    };
}

/// <summary>Checkpoints of one reader, kept while it runs.</summary>
internal sealed class MemoryCheckpointStore : CheckpointStore, IHandoverRequests
{
    private readonly CheckpointDocument document = new();

    public override Task<IEnumerable<EventProcessorPartitionOwnership>> ListOwnershipAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, CancellationToken cancellationToken)
    {
        lock (document)
        {
            return Task.FromResult(document.ListOwnership(fullyQualifiedNamespace, eventHubName, consumerGroup));
        }
    }

    public override Task<IEnumerable<EventProcessorPartitionOwnership>> ClaimOwnershipAsync(IEnumerable<EventProcessorPartitionOwnership> desiredOwnership, CancellationToken cancellationToken)
    {
        lock (document)
        {
            return Task.FromResult<IEnumerable<EventProcessorPartitionOwnership>>(document.Claim(desiredOwnership));
        }
    }

    public override Task<EventProcessorCheckpoint> GetCheckpointAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, CancellationToken cancellationToken)
    {
        lock (document)
        {
            return Task.FromResult(document.GetCheckpoint(fullyQualifiedNamespace, eventHubName, consumerGroup, partitionId)!);
        }
    }

    public override Task UpdateCheckpointAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, string clientIdentifier, CheckpointPosition startingPosition, CancellationToken cancellationToken)
    {
        lock (document)
        {
            document.SetCheckpoint(fullyQualifiedNamespace, eventHubName, consumerGroup, partitionId, startingPosition);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<HandoverRequest>> ListRequestsAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, CancellationToken cancellationToken)
    {
        lock (document)
        {
            return Task.FromResult(document.ListRequests(fullyQualifiedNamespace, eventHubName, consumerGroup));
        }
    }

    public Task RequestAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, string requester, CancellationToken cancellationToken)
    {
        lock (document)
        {
            document.Request(fullyQualifiedNamespace, eventHubName, consumerGroup, partitionId, requester);
        }

        return Task.CompletedTask;
    }

    public Task ClearRequestAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, CancellationToken cancellationToken)
    {
        lock (document)
        {
            document.ClearRequest(fullyQualifiedNamespace, eventHubName, consumerGroup, partitionId);
        }

        return Task.CompletedTask;
    }
}

/// <summary>
/// Checkpoints and ownership in one JSON file, for readers on one machine (or a shared folder): each operation takes an
/// exclusive lock file beside it, reads the file, changes it and replaces it whole, so a reader that dies mid-write
/// leaves the previous version.
/// </summary>
internal sealed class FileCheckpointStore(string path) : CheckpointStore, IHandoverRequests
{
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(30);

    public string Path { get; } = path;

    /// <summary>Reads the file once: a file that is not a checkpoint file is an error, a missing one is empty.</summary>
    public async Task ValidateAsync(CancellationToken cancellationToken) => await WithDocumentAsync(_ => false, cancellationToken).ConfigureAwait(false);

    public override async Task<IEnumerable<EventProcessorPartitionOwnership>> ListOwnershipAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, CancellationToken cancellationToken)
    {
        IEnumerable<EventProcessorPartitionOwnership> result = [];
        await WithDocumentAsync(d =>
        {
            result = d.ListOwnership(fullyQualifiedNamespace, eventHubName, consumerGroup);
            return false;
        }, cancellationToken).ConfigureAwait(false);
        return result;
    }

    public override async Task<IEnumerable<EventProcessorPartitionOwnership>> ClaimOwnershipAsync(IEnumerable<EventProcessorPartitionOwnership> desiredOwnership, CancellationToken cancellationToken)
    {
        List<EventProcessorPartitionOwnership> claimed = [];
        await WithDocumentAsync(d =>
        {
            claimed = d.Claim(desiredOwnership);
            return claimed.Count > 0;
        }, cancellationToken).ConfigureAwait(false);
        return claimed;
    }

    public override async Task<EventProcessorCheckpoint> GetCheckpointAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, CancellationToken cancellationToken)
    {
        EventProcessorCheckpoint? checkpoint = null;
        await WithDocumentAsync(d =>
        {
            checkpoint = d.GetCheckpoint(fullyQualifiedNamespace, eventHubName, consumerGroup, partitionId);
            return false;
        }, cancellationToken).ConfigureAwait(false);
        return checkpoint!;
    }

    public override Task UpdateCheckpointAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, string clientIdentifier, CheckpointPosition startingPosition, CancellationToken cancellationToken) =>
        WithDocumentAsync(d =>
        {
            d.SetCheckpoint(fullyQualifiedNamespace, eventHubName, consumerGroup, partitionId, startingPosition);
            return true;
        }, cancellationToken);

    public async Task<IReadOnlyList<HandoverRequest>> ListRequestsAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, CancellationToken cancellationToken)
    {
        IReadOnlyList<HandoverRequest> result = [];
        await WithDocumentAsync(d =>
        {
            result = d.ListRequests(fullyQualifiedNamespace, eventHubName, consumerGroup);
            return false;
        }, cancellationToken).ConfigureAwait(false);
        return result;
    }

    public Task RequestAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, string requester, CancellationToken cancellationToken) =>
        WithDocumentAsync(d =>
        {
            d.Request(fullyQualifiedNamespace, eventHubName, consumerGroup, partitionId, requester);
            return true;
        }, cancellationToken);

    public Task ClearRequestAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, CancellationToken cancellationToken) =>
        WithDocumentAsync(d => d.ClearRequest(fullyQualifiedNamespace, eventHubName, consumerGroup, partitionId), cancellationToken);

    private async Task WithDocumentAsync(Func<CheckpointDocument, bool> change, CancellationToken cancellationToken)
    {
        var folder = System.IO.Path.GetDirectoryName(Path)!;
        Directory.CreateDirectory(folder);
        await using var gate = await LockAsync(cancellationToken).ConfigureAwait(false);
        CheckpointDocument document;
        try
        {
            document = File.Exists(Path) ? CheckpointDocument.FromJson(JsonNode.Parse(await File.ReadAllTextAsync(Path, cancellationToken).ConfigureAwait(false))) : new CheckpointDocument();
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException or NullReferenceException or KeyNotFoundException)
        {
            throw new IoTHubMqttException(ErrorIds.CheckpointFileInvalid,
                $"The checkpoint file {Path} is not one this module wrote: {ex.Message}", "Pass a new file, or delete this one to start over (the readers then start at -StartPosition/-StartTime).", Path, ex);
        }

        if (!change(document))
        {
            return;
        }

        var temporary = Path + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        await File.WriteAllTextAsync(temporary, document.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken).ConfigureAwait(false);
        File.Move(temporary, Path, overwrite: true);
    }

    private async Task<FileStream> LockAsync(CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + LockTimeout;
        var delay = TimeSpan.FromMilliseconds(5);
        while (true)
        {
            try
            {
                return new FileStream(Path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(200, delay.TotalMilliseconds * 2));
            }
            catch (UnauthorizedAccessException ex)
            {
                throw new IoTHubMqttException(ErrorIds.CheckpointFileNotWritable,
                    $"The checkpoint file {Path} cannot be written: {ex.Message}", "Pass a path in a folder you can write to.", Path, ex);
            }
        }
    }
}

/// <summary>
/// Checkpoints and ownership in blobs, named and tagged as the Event Hubs blob checkpoint stores name them
/// (<c>{namespace}/{eventhub}/{consumergroup}/ownership/{partition}</c> with metadata <c>ownerid</c>,
/// <c>…/checkpoint/{partition}</c> with <c>offset</c> and <c>sequencenumber</c>; ETags as ownership versions), so the
/// .NET and JavaScript Event Hubs processors share them. Requests for partitions (<see cref="HandoverCheckpointStore"/>)
/// are blobs of their own, <c>…/handover/{partition}</c> with metadata <c>requester</c>, which those processors ignore.
/// </summary>
internal sealed class BlobCheckpointStore(BlobContainerClient container) : CheckpointStore, IHandoverRequests
{
    private static readonly BinaryData Empty = BinaryData.FromBytes([]);

    public BlobContainerClient Container { get; } = container;

    private static string Prefix(string ns, string eventHub, string group, string kind) =>
        $"{ns.ToLowerInvariant()}/{eventHub.ToLowerInvariant()}/{group.ToLowerInvariant()}/{kind}/";

    public override async Task<IEnumerable<EventProcessorPartitionOwnership>> ListOwnershipAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, CancellationToken cancellationToken)
    {
        var prefix = Prefix(fullyQualifiedNamespace, eventHubName, consumerGroup, "ownership");
        var result = new List<EventProcessorPartitionOwnership>();
        await foreach (var blob in Container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, prefix, cancellationToken).ConfigureAwait(false))
        {
            result.Add(new EventProcessorPartitionOwnership
            {
                FullyQualifiedNamespace = fullyQualifiedNamespace,
                EventHubName = eventHubName,
                ConsumerGroup = consumerGroup,
                PartitionId = blob.Name[prefix.Length..],
                OwnerIdentifier = blob.Metadata.TryGetValue("ownerid", out var owner) ? owner : "",
                LastModifiedTime = blob.Properties.LastModified ?? DateTimeOffset.MinValue,
                Version = blob.Properties.ETag?.ToString(),
            });
        }

        return result;
    }

    public override async Task<IEnumerable<EventProcessorPartitionOwnership>> ClaimOwnershipAsync(IEnumerable<EventProcessorPartitionOwnership> desiredOwnership, CancellationToken cancellationToken)
    {
        var claimed = new List<EventProcessorPartitionOwnership>();
        foreach (var want in desiredOwnership)
        {
            var blob = Container.GetBlobClient(Prefix(want.FullyQualifiedNamespace, want.EventHubName, want.ConsumerGroup, "ownership") + want.PartitionId);
            var metadata = new Dictionary<string, string> { ["ownerid"] = want.OwnerIdentifier ?? "" };
            try
            {
                ETag etag;
                DateTimeOffset modified;
                if (want.Version is null)
                {
                    var created = await blob.UploadAsync(Empty, new BlobUploadOptions { Metadata = metadata, Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken).ConfigureAwait(false);
                    (etag, modified) = (created.Value.ETag, created.Value.LastModified);
                }
                else
                {
                    var updated = await blob.SetMetadataAsync(metadata, new BlobRequestConditions { IfMatch = new ETag(want.Version) }, cancellationToken).ConfigureAwait(false);
                    (etag, modified) = (updated.Value.ETag, updated.Value.LastModified);
                }

                claimed.Add(TelemetryCheckpoints.Ownership(want, want.OwnerIdentifier, modified, etag.ToString()));
            }
            catch (RequestFailedException ex) when (ex.Status is 409 or 412 or 404)
            {
                // Another reader claimed or changed it first.
            }
        }

        return claimed;
    }

    public override async Task<EventProcessorCheckpoint> GetCheckpointAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, CancellationToken cancellationToken)
    {
        var blob = Container.GetBlobClient(Prefix(fullyQualifiedNamespace, eventHubName, consumerGroup, "checkpoint") + partitionId);
        try
        {
            var properties = (await blob.GetPropertiesAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
            var offset = properties.Metadata.TryGetValue("offset", out var o) && o.Length > 0 ? o : null;
            long? sequence = properties.Metadata.TryGetValue("sequencenumber", out var s) && long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? n : null;
            return offset is null && sequence is null ? null! : TelemetryCheckpoints.ToCheckpoint(fullyQualifiedNamespace, eventHubName, consumerGroup, partitionId, offset, sequence, properties.LastModified);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null!;
        }
    }

    public override async Task UpdateCheckpointAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, string clientIdentifier, CheckpointPosition startingPosition, CancellationToken cancellationToken)
    {
        var blob = Container.GetBlobClient(Prefix(fullyQualifiedNamespace, eventHubName, consumerGroup, "checkpoint") + partitionId);
        var metadata = new Dictionary<string, string>
        {
            ["sequencenumber"] = startingPosition.SequenceNumber.ToString(CultureInfo.InvariantCulture),
            ["offset"] = startingPosition.OffsetString ?? "",
        };
        if (!string.IsNullOrEmpty(clientIdentifier))
        {
            metadata["clientidentifier"] = clientIdentifier;
        }

        await blob.UploadAsync(Empty, new BlobUploadOptions { Metadata = metadata }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<HandoverRequest>> ListRequestsAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, CancellationToken cancellationToken)
    {
        var prefix = Prefix(fullyQualifiedNamespace, eventHubName, consumerGroup, "handover");
        var result = new List<HandoverRequest>();
        await foreach (var blob in Container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, prefix, cancellationToken).ConfigureAwait(false))
        {
            if (blob.Metadata.TryGetValue("requester", out var requester) && requester.Length > 0)
            {
                result.Add(new HandoverRequest(blob.Name[prefix.Length..], requester, blob.Properties.LastModified ?? DateTimeOffset.MinValue));
            }
        }

        return result;
    }

    public async Task RequestAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, string requester, CancellationToken cancellationToken)
    {
        var blob = Container.GetBlobClient(Prefix(fullyQualifiedNamespace, eventHubName, consumerGroup, "handover") + partitionId);
        await blob.UploadAsync(Empty, new BlobUploadOptions { Metadata = new Dictionary<string, string> { ["requester"] = requester } }, cancellationToken).ConfigureAwait(false);
    }

    public async Task ClearRequestAsync(string fullyQualifiedNamespace, string eventHubName, string consumerGroup, string partitionId, CancellationToken cancellationToken)
    {
        var blob = Container.GetBlobClient(Prefix(fullyQualifiedNamespace, eventHubName, consumerGroup, "handover") + partitionId);
        await blob.DeleteIfExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
    }
}
