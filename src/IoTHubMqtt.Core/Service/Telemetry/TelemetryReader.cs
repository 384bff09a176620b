using System.Globalization;
using System.Security.Authentication;
using System.Threading.Channels;
using Azure;
using Azure.Messaging.EventHubs;
using Azure.Messaging.EventHubs.Primitives;
using Azure.Messaging.EventHubs.Processor;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service;

/// <summary>
/// Telemetry of the hub's Event Hub-compatible endpoint read through the Event Hubs processor model
/// (Azure.Messaging.EventHubs <see cref="PluggableCheckpointStoreEventProcessor{TPartition}"/>): the reader claims
/// partitions of its consumer group in the checkpoint store, balancing them with other readers of the same store, and
/// starts each where its checkpoint says. A checkpoint records only events the caller acknowledged
/// (<see cref="Acknowledge"/>), in order, per partition, and is written as the reader goes and when it is disposed, so a
/// reader that stops and starts again neither loses nor repeats an event. Events of a partition the reader lost to
/// another are dropped before they are handed out. Connections that drop are opened again by the client's retry policy.
/// </summary>
public sealed class TelemetryReader : IAsyncDisposable
{
    private const string Operation = "Read telemetry";
    private readonly Channel<Item> events = Channel.CreateBounded<Item>(new BoundedChannelOptions(1000) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly Dictionary<string, Track> partitions = new(StringComparer.Ordinal);
    private readonly string? deviceId;
    private readonly int maxRetries;
    private readonly Action<string>? log;
    private TelemetryProcessor? processor;
    private int failures;
    private int disposed;

    internal TelemetryReader(string host, string eventHubName, string consumerGroup, IReadOnlyList<string> partitionIds, string? deviceId, int maxRetries, Action<string>? log)
    {
        EventHubHost = host;
        EventHubName = eventHubName;
        ConsumerGroup = consumerGroup;
        PartitionIds = partitionIds;
        this.deviceId = deviceId;
        this.maxRetries = maxRetries;
        this.log = log;
    }

    /// <summary>The Event Hubs namespace host (the hub's redirect names it).</summary>
    public string EventHubHost { get; }

    /// <summary>The Event Hub-compatible name.</summary>
    public string EventHubName { get; }

    public string ConsumerGroup { get; }

    /// <summary>The partitions this reader shares with the other readers of its consumer group and checkpoint store.</summary>
    public IReadOnlyList<string> PartitionIds { get; }

    /// <summary>The partitions this reader owns now.</summary>
    public IReadOnlyList<string> OwnedPartitionIds
    {
        get
        {
            lock (partitions)
            {
                return partitions.Where(p => p.Value.Owned).Select(p => p.Key).Order(StringComparer.Ordinal).ToList();
            }
        }
    }

    /// <summary>The reader's name in the ownership records.</summary>
    public string ReaderId => processor?.Identifier ?? "";

    internal void Start(TelemetryProcessor started) => processor = started;

    /// <summary>Up to <paramref name="max"/> messages, waiting up to <paramref name="wait"/> for the first; none when none came.</summary>
    public async Task<IReadOnlyList<TelemetryEvent>> ReadAsync(int max, TimeSpan wait, CancellationToken cancellationToken = default)
    {
        var batch = new List<TelemetryEvent>();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(wait < TimeSpan.Zero ? TimeSpan.Zero : wait);
        while (batch.Count == 0)
        {
            try
            {
                if (!await events.Reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false))
                {
                    await events.Reader.Completion.ConfigureAwait(false); // throws the reason the reader ended
                    return batch;
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return batch;
            }

            while (batch.Count < max && events.Reader.TryRead(out var item))
            {
                lock (partitions)
                {
                    if (item.Track.Generation != item.Generation)
                    {
                        continue; // the partition moved to another reader: it delivers this event
                    }

                    if (item.Hidden)
                    {
                        item.Acknowledged = true;
                        item.Track.Advance();
                        continue;
                    }
                }

                batch.Add(item.Event);
            }
        }

        return batch;
    }

    /// <summary>Marks an event read by <see cref="ReadAsync"/> as processed: the checkpoint of its partition may move past it.</summary>
    public void Acknowledge(TelemetryEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.Receipt is not Item item)
        {
            return;
        }

        lock (partitions)
        {
            item.Acknowledged = true;
            item.Track.Advance();
        }
    }

    /// <summary>Writes the checkpoint of every owned partition whose acknowledged position moved.</summary>
    public async Task CheckpointAsync(CancellationToken cancellationToken = default)
    {
        foreach (var partition in PartitionIds)
        {
            await CheckpointAsync(partition, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task CheckpointAsync(string partition, CancellationToken cancellationToken)
    {
        TelemetryEvent? position;
        lock (partitions)
        {
            if (processor is null || !partitions.TryGetValue(partition, out var track) || !track.Owned || track.Committed is null || ReferenceEquals(track.Committed, track.Written))
            {
                return;
            }

            position = track.Committed;
        }

        await processor.CheckpointAsync(partition, position, cancellationToken).ConfigureAwait(false);
        lock (partitions)
        {
            if (partitions.TryGetValue(partition, out var track) && (track.Written is null || track.Written.SequenceNumber < position.SequenceNumber))
            {
                track.Written = position;
            }
        }
    }

    internal async Task OnBatchAsync(IEnumerable<EventData> batch, string partition, CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref failures, 0);
        Track track;
        int generation;
        lock (partitions)
        {
            track = TrackOf(partition);
            generation = track.Generation;
        }

        foreach (var data in batch)
        {
            var e = TelemetryEvent.From(data, partition);
            var item = new Item(track, generation, deviceId is not null && e.DeviceId != deviceId);
            item.Event = e with { Receipt = item };
            lock (partitions)
            {
                if (track.Generation != generation)
                {
                    return;
                }

                track.Outstanding.Enqueue(item);
            }

            await events.Writer.WriteAsync(item, cancellationToken).ConfigureAwait(false);
        }

        // Called at least every MaximumWaitTime, events or not: the checkpoint follows the caller's acknowledgements.
        await CheckpointAsync(partition, cancellationToken).ConfigureAwait(false);
    }

    internal void OnPartitionStarted(string partition)
    {
        lock (partitions)
        {
            var track = TrackOf(partition);
            track.Generation++;
            track.Owned = true;
            track.Outstanding.Clear();
            track.Committed = track.Written = null;
        }

        log?.Invoke($"{Operation}: reading partition {partition} of {EventHubName} ({ConsumerGroup}).");
    }

    internal void OnPartitionStopped(string partition, ProcessingStoppedReason reason)
    {
        lock (partitions)
        {
            var track = TrackOf(partition);
            track.Generation++;
            track.Owned = false;
            track.Outstanding.Clear();
        }

        log?.Invoke($"{Operation}: stopped reading partition {partition} ({reason}).");
    }

    /// <summary>Errors the processor reports: ones no retry mends end the read; others are retried, up to a bound without progress.</summary>
    internal void OnError(Exception exception, string? partition, string operation)
    {
        var fatal = Classify(exception, operation);
        if (fatal is not null)
        {
            events.Writer.TryComplete(fatal);
            return;
        }

        if (exception is EventHubsException { Reason: EventHubsException.FailureReason.ConsumerDisconnected })
        {
            log?.Invoke($"{Operation}: partition {partition} was taken by another reader.");
            return;
        }

        var count = Interlocked.Increment(ref failures);
        log?.Invoke($"{Operation}: {operation}{(partition is null ? "" : $" (partition {partition})")} failed ({count.ToString(CultureInfo.InvariantCulture)}): {exception.Message}");
        if (count > maxRetries)
        {
            events.Writer.TryComplete(new IoTHubMqttException("IoTHubConnectionFailed", IoTHubErrorKind.ConnectionError,
                $"{Operation}: {count.ToString(CultureInfo.InvariantCulture)} attempts in a row to reach {EventHubHost} failed: {exception.Message}",
                "Check the network and that the hub is reachable on its AMQP port, then read again (a checkpoint resumes where this read stopped).", EventHubHost, exception));
        }
    }

    /// <summary>The error that ends a read for <paramref name="exception"/>, or null when a retry may mend it.</summary>
    internal static IoTHubMqttException? Classify(Exception exception, string what)
    {
        var tls = exception as AuthenticationException ?? exception.InnerException as AuthenticationException;
        return exception switch
        {
            _ when tls is not null => new IoTHubMqttException("TlsAuthenticationFailed", IoTHubErrorKind.Unauthorized,
                $"{Operation}: the TLS connection to the Event Hub-compatible endpoint failed: {tls.Message}", "Check the CA certificate (-CaCertificatePath for the emulator).", null, exception),
            UnauthorizedAccessException => new IoTHubMqttException("IoTHubUnauthorized", IoTHubErrorKind.Unauthorized,
                $"{Operation}: the Event Hub-compatible endpoint refused the policy's token: {exception.Message}", "Use a policy with the ServiceConnect permission and its current key.", null, exception),
            EventHubsException { Reason: EventHubsException.FailureReason.ResourceNotFound } => new IoTHubMqttException("IoTHubResourceNotFound", IoTHubErrorKind.NotFound,
                $"{Operation}: {exception.Message}", "Check the consumer group and partition ids (Get-Help Receive-IoTHubTelemetry -Parameter ConsumerGroup).", null, exception),
            EventHubsException { Reason: EventHubsException.FailureReason.QuotaExceeded } => new IoTHubMqttException("IoTHubThrottled", IoTHubErrorKind.Throttled,
                $"{Operation}: {exception.Message}", "At most 5 readers may read a partition of a consumer group at once: use another consumer group or stop a reader.", null, exception),
            RequestFailedException { Status: 401 or 403 } => new IoTHubMqttException("CheckpointStoreUnauthorized", IoTHubErrorKind.Unauthorized,
                $"{Operation}: the checkpoint container refused the request ({what}): {FirstLine(exception.Message)}", "Pass a container URL with a SAS that may read, write, list and create blobs, or a valid storage connection string.", null, exception),
            RequestFailedException { Status: 404 } => new IoTHubMqttException("CheckpointContainerNotFound", IoTHubErrorKind.NotFound,
                $"{Operation}: the checkpoint container does not exist ({what}): {FirstLine(exception.Message)}", "Create the container, or pass one that exists.", null, exception),
            IoTHubMqttException known when known.ErrorId.StartsWith("Checkpoint", StringComparison.Ordinal) => known,
            _ => null,
        };
    }

    private static string FirstLine(string text) => text.Split('\n')[0].Trim();

    private Track TrackOf(string partition)
    {
        if (!partitions.TryGetValue(partition, out var track))
        {
            partitions[partition] = track = new Track();
        }

        return track;
    }

    /// <summary>Writes the checkpoints of what was acknowledged, then stops the processor (which gives up its partitions).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await CheckpointAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RequestFailedException or IOException or IoTHubMqttException or EventHubsException or OperationCanceledException)
        {
            log?.Invoke($"{Operation}: the last checkpoint was not written: {ex.Message}");
        }

        if (processor is not null)
        {
            try
            {
                await processor.StopProcessingAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is EventHubsException or RequestFailedException or IOException or IoTHubMqttException or OperationCanceledException or AggregateException)
            {
                log?.Invoke($"{Operation}: stopping: {ex.Message}");
            }
        }

        events.Writer.TryComplete();
    }

    /// <summary>A partition's handed-out events in order and the positions acknowledged (<see cref="Committed"/>) and written to the store.</summary>
    private sealed class Track
    {
        public Queue<Item> Outstanding { get; } = new();

        public int Generation { get; set; }

        public bool Owned { get; set; }

        public TelemetryEvent? Committed { get; set; }

        public TelemetryEvent? Written { get; set; }

        /// <summary>Moves <see cref="Committed"/> over the acknowledged events at the head.</summary>
        public void Advance()
        {
            while (Outstanding.TryPeek(out var head) && head.Acknowledged)
            {
                Outstanding.Dequeue();
                Committed = head.Event;
            }
        }
    }

    private sealed class Item(Track track, int generation, bool hidden)
    {
        public Track Track { get; } = track;

        public int Generation { get; } = generation;

        /// <summary>Not for the caller (another device's): acknowledged as it is passed over.</summary>
        public bool Hidden { get; } = hidden;

        public bool Acknowledged { get; set; }

        public TelemetryEvent Event { get; set; } = null!;
    }
}

/// <summary>The Event Hubs processor that feeds a <see cref="TelemetryReader"/>.</summary>
internal sealed class TelemetryProcessor : PluggableCheckpointStoreEventProcessor<EventProcessorPartition>
{
    private readonly TelemetryReader reader;
    private readonly string[] partitionIds;

    public TelemetryProcessor(TelemetryReader reader, CheckpointStore store, string consumerGroup, string host, string eventHubName, AzureNamedKeyCredential credential,
        IReadOnlyList<string> partitionIds, EventProcessorOptions options)
        : base(store, 100, consumerGroup, host, eventHubName, credential, options)
    {
        this.reader = reader;
        this.partitionIds = [.. partitionIds];
    }

    public TelemetryProcessor(TelemetryReader reader, CheckpointStore store, string consumerGroup, string host, string eventHubName, AzureSasCredential credential,
        IReadOnlyList<string> partitionIds, EventProcessorOptions options)
        : base(store, 100, consumerGroup, host, eventHubName, credential, options)
    {
        this.reader = reader;
        this.partitionIds = [.. partitionIds];
    }

    public Task CheckpointAsync(string partition, TelemetryEvent e, CancellationToken cancellationToken) =>
        UpdateCheckpointAsync(partition, new CheckpointPosition(e.Offset ?? "", e.SequenceNumber), cancellationToken);

    protected override Task<string[]> ListPartitionIdsAsync(EventHubConnection connection, CancellationToken cancellationToken) => Task.FromResult(partitionIds);

    protected override Task OnProcessingEventBatchAsync(IEnumerable<EventData> events, EventProcessorPartition partition, CancellationToken cancellationToken) =>
        reader.OnBatchAsync(events, partition.PartitionId, cancellationToken);

    protected override Task OnProcessingErrorAsync(Exception exception, EventProcessorPartition partition, string operationDescription, CancellationToken cancellationToken)
    {
        reader.OnError(exception, partition?.PartitionId, operationDescription);
        return Task.CompletedTask;
    }

    protected override Task OnInitializingPartitionAsync(EventProcessorPartition partition, CancellationToken cancellationToken)
    {
        reader.OnPartitionStarted(partition.PartitionId);
        return Task.CompletedTask;
    }

    protected override Task OnPartitionProcessingStoppedAsync(EventProcessorPartition partition, ProcessingStoppedReason reason, CancellationToken cancellationToken)
    {
        reader.OnPartitionStopped(partition.PartitionId, reason);
        return Task.CompletedTask;
    }
}
