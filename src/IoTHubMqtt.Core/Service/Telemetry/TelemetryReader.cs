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
/// starts each where its checkpoint says. A checkpoint records only events the caller delivered
/// (<see cref="BeginDelivery"/> / <see cref="EndDelivery"/>), in order, per partition, and is written as the reader goes
/// and when it is disposed, so a reader that stops and starts again neither loses nor repeats an event. A partition that
/// another reader of the store asks for is handed over: this reader stops delivering its events, writes its checkpoint and
/// only then gives it up (<see cref="HandOverAsync"/>), so the other reader starts exactly after the last event delivered
/// here. Connections that drop are opened again by the client's retry policy.
/// </summary>
public sealed class TelemetryReader : IAsyncDisposable
{
    private const string Operation = "Read telemetry";

    /// <summary>How long a handover waits for the message being delivered to land (a pipeline blocked downstream).</summary>
    private static readonly TimeSpan HandOverWait = TimeSpan.FromSeconds(10);
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

    /// <summary>Where the reader keeps its checkpoints; null: in memory.</summary>
    public TelemetryCheckpointLocation? Checkpoint { get; internal init; }

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
                    if (!item.Current)
                    {
                        continue; // the partition moved to another reader (or started again): it delivers this event
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
        if (BeginDelivery(e))
        {
            EndDelivery(e, delivered: true);
        }
    }

    /// <summary>
    /// Before an event read by <see cref="ReadAsync"/> is handed on: false when its partition has meanwhile gone to another
    /// reader (or started again), which then delivers it: skip it. Every true is followed by <see cref="EndDelivery"/>.
    /// </summary>
    public bool BeginDelivery(TelemetryEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.Receipt is not Item item)
        {
            return true;
        }

        lock (partitions)
        {
            if (!item.Current)
            {
                return false;
            }

            item.Track.InFlight = item;
            return true;
        }
    }

    /// <summary>After <see cref="BeginDelivery"/>: delivered, the checkpoint may move past the event; not delivered, it stays before it.</summary>
    public void EndDelivery(TelemetryEvent e, bool delivered)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.Receipt is not Item item)
        {
            return;
        }

        TaskCompletionSource? waiting;
        lock (partitions)
        {
            if (delivered)
            {
                item.Acknowledged = true;
                item.Track.Advance();
            }

            if (!ReferenceEquals(item.Track.InFlight, item))
            {
                return;
            }

            item.Track.InFlight = null;
            waiting = item.Track.Landed;
            item.Track.Landed = null;
        }

        waiting?.TrySetResult();
    }

    /// <summary>Writes the checkpoint of every owned partition whose acknowledged position moved.</summary>
    public async Task CheckpointAsync(CancellationToken cancellationToken = default)
    {
        foreach (var partition in PartitionIds)
        {
            await CheckpointAsync(partition, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task CheckpointAsync(string partition, CancellationToken cancellationToken, bool final = false)
    {
        Track? track;
        lock (partitions)
        {
            if (processor is null || !partitions.TryGetValue(partition, out track))
            {
                return;
            }
        }

        // One write at a time per partition, so that a slow periodic write never lands after the last one of a handover.
        await track.Writing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            TelemetryEvent position;
            lock (partitions)
            {
                if ((!track.Owned && !final) || track.Committed is null || ReferenceEquals(track.Committed, track.Written))
                {
                    return;
                }

                position = track.Committed;
            }

            await processor.CheckpointAsync(partition, position, cancellationToken).ConfigureAwait(false);
            lock (partitions)
            {
                if (track.Written is null || track.Written.SequenceNumber < position.SequenceNumber)
                {
                    track.Written = position;
                }
            }
        }
        finally
        {
            track.Writing.Release();
        }
    }

    /// <summary>
    /// Stops delivering the events of <paramref name="partition"/> (the one being handed on now may land first), then writes
    /// the checkpoint of what was delivered: after this, another reader may start the partition at that checkpoint. Used
    /// before this reader gives a partition to another, and before it starts a partition again itself.
    /// </summary>
    internal async Task HandOverAsync(string partition, CancellationToken cancellationToken)
    {
        Task? landing;
        lock (partitions)
        {
            if (!partitions.TryGetValue(partition, out var track))
            {
                return;
            }

            track.Owned = false;
            track.Generation++;
            landing = track.InFlight is null ? null : (track.Landed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }

        if (landing is not null)
        {
            try
            {
                await landing.WaitAsync(HandOverWait, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                log?.Invoke($"{Operation}: partition {partition} is handed over while a message is still being delivered; it may be read again.");
            }
        }

        await CheckpointAsync(partition, cancellationToken, final: true).ConfigureAwait(false);
        lock (partitions)
        {
            var track = partitions[partition];
            track.Outstanding.Clear();
            track.Committed = track.Written = null;
        }
    }

    internal async Task OnBatchAsync(IEnumerable<EventData> batch, string partition, CancellationToken cancellationToken)
    {
        Progressed();
        Track track;
        int generation;
        lock (partitions)
        {
            track = TrackOf(partition);
            generation = track.Generation;
            if (!track.Owned)
            {
                return; // handed over: its events are the new owner's
            }
        }

        foreach (var data in batch)
        {
            var e = TelemetryEvent.From(data, partition);
            var item = new Item(track, generation, deviceId is not null && e.DeviceId != deviceId);
            item.Event = e with { Receipt = item };
            lock (partitions)
            {
                if (!item.Current)
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

    /// <summary>
    /// Before the processor reads a partition's checkpoint to start it: when this reader read it before (a consumer that
    /// failed and is opened again), what it delivered is written first, so that the new start repeats nothing.
    /// </summary>
    internal async Task OnPartitionStartingAsync(string partition, CancellationToken cancellationToken)
    {
        await HandOverAsync(partition, cancellationToken).ConfigureAwait(false);
        lock (partitions)
        {
            var track = TrackOf(partition);
            track.Generation++;
            track.Owned = true;
        }

        log?.Invoke($"{Operation}: reading partition {partition} of {EventHubName} ({ConsumerGroup}).");
    }

    /// <summary>The processor stopped reading a partition (given up, lost, shut down or failed): what was delivered is written.</summary>
    internal async Task OnPartitionStoppedAsync(string partition, ProcessingStoppedReason reason)
    {
        try
        {
            await HandOverAsync(partition, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RequestFailedException or IOException or IoTHubMqttException or EventHubsException or OperationCanceledException)
        {
            log?.Invoke($"{Operation}: the checkpoint of partition {partition} was not written: {ex.Message}");
        }

        log?.Invoke($"{Operation}: stopped reading partition {partition} ({reason}).");
    }

    /// <summary>Errors the processor reports: ones no retry mends end the read; others are retried, up to a bound without progress.</summary>
    internal void OnError(Exception exception, string? partition, string operation)
    {
        if (exception is OperationCanceledException && Volatile.Read(ref disposed) != 0)
        {
            return;
        }

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
            events.Writer.TryComplete(new IoTHubMqttException(ErrorIds.IoTHubConnectionFailed,
                $"{Operation}: {count.ToString(CultureInfo.InvariantCulture)} attempts in a row to reach {EventHubHost} failed: {exception.Message}",
                "Check the network and that the hub is reachable on its AMQP port, then read again (a checkpoint resumes where this read stopped).", EventHubHost, exception));
        }
    }

    /// <summary>Something worked (a batch arrived, the checkpoint store answered): the count of failures in a row starts again.</summary>
    internal void Progressed() => Interlocked.Exchange(ref failures, 0);

    /// <summary>The error that ends a read for <paramref name="exception"/>, or null when a retry may mend it.</summary>
    internal static IoTHubMqttException? Classify(Exception exception, string what)
    {
        var tls = exception as AuthenticationException ?? exception.InnerException as AuthenticationException;
        return exception switch
        {
            _ when tls is not null => new IoTHubMqttException(ErrorIds.TlsAuthenticationFailed,
                $"{Operation}: the TLS connection to the Event Hub-compatible endpoint failed: {tls.Message}", "Check the CA certificate (-CaCertificatePath for the emulator).", null, exception),
            UnauthorizedAccessException => new IoTHubMqttException(ErrorIds.IoTHubUnauthorized,
                $"{Operation}: the Event Hub-compatible endpoint refused the policy's token: {exception.Message}", "Use a policy with the ServiceConnect permission and its current key.", null, exception),
            EventHubsException { Reason: EventHubsException.FailureReason.ResourceNotFound } => new IoTHubMqttException(ErrorIds.IoTHubResourceNotFound,
                $"{Operation}: {exception.Message}", "Check the consumer group and partition ids (Get-Help Receive-IoTHubTelemetry -Parameter ConsumerGroup).", null, exception),
            EventHubsException { Reason: EventHubsException.FailureReason.QuotaExceeded } => new IoTHubMqttException(ErrorIds.IoTHubThrottled,
                $"{Operation}: {exception.Message}", "At most 5 readers may read a partition of a consumer group at once: use another consumer group or stop a reader.", null, exception),
            RequestFailedException { Status: 401 or 403 } => new IoTHubMqttException(ErrorIds.CheckpointStoreUnauthorized,
                $"{Operation}: the checkpoint container refused the request ({what}): {FirstLine(exception.Message)}", "Pass a container URL with a SAS that may read, write, list and create blobs, or a valid storage connection string.", null, exception),
            RequestFailedException { Status: 404 } => new IoTHubMqttException(ErrorIds.CheckpointContainerNotFound,
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

        /// <summary>The event being handed on now (between <see cref="BeginDelivery"/> and <see cref="EndDelivery"/>).</summary>
        public Item? InFlight { get; set; }

        /// <summary>Completed when <see cref="InFlight"/> lands; a handover waits for it.</summary>
        public TaskCompletionSource? Landed { get; set; }

        /// <summary>Serializes the checkpoint writes of the partition.</summary>
        public SemaphoreSlim Writing { get; } = new(1, 1);

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

        /// <summary>Still this reader's to deliver: its partition is owned and has not started again since it was read.</summary>
        public bool Current => Track.Owned && Track.Generation == Generation;

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

    protected override Task OnInitializingPartitionAsync(EventProcessorPartition partition, CancellationToken cancellationToken) =>
        reader.OnPartitionStartingAsync(partition.PartitionId, cancellationToken);

    protected override Task OnPartitionProcessingStoppedAsync(EventProcessorPartition partition, ProcessingStoppedReason reason, CancellationToken cancellationToken) =>
        reader.OnPartitionStoppedAsync(partition.PartitionId, reason);
}
