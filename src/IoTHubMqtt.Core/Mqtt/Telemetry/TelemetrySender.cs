using IoTHubMqtt.Core.Diagnostics;
using IoTHubMqtt.Core.Errors;
using MQTTnet;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// Device-to-cloud telemetry: one bounded outbox, one send path.
/// <para>
/// <see cref="SendAsync"/> takes a place in the outbox — waiting while it is full — and returns the task that completes
/// when the hub has acknowledged the message (PUBACK; for QoS 0, when it is written). The outbox holds
/// <see cref="Capacity"/> messages (four in-flight windows, and no more than <see cref="MaxWaitingBytes"/> waiting their
/// turn); at most <see cref="Window"/> of them wait for their PUBACK at once, the rest wait their turn, and all go out
/// in the order they were sent. Nothing polls and no thread is
/// dedicated to sending: the caller publishes while the window has room, and each acknowledgement publishes the next
/// waiting messages from the thread that delivered it. A producer that found the outbox full is let in again only when
/// it has half emptied, so a fast producer (a pipeline) is woken once per window rather than once per message.
/// </para>
/// <para>
/// When the connection is lost, the unacknowledged messages go back to the outbox in their order and are published
/// again once the session has reconnected (at least once: the hub may see a message twice, never zero times). A
/// message is given up only after <see cref="MaxFruitlessAttempts"/> attempts in a row during which no other message
/// was acknowledged (a hub that refuses this message), or when it waited longer than the operation timeout for a
/// lost connection to come back (<c>NotConnected</c>). If the hub stops acknowledging for an operation timeout while
/// the connection seems up, the session is told to drop it and reconnect.
/// </para>
/// </summary>
public sealed class TelemetrySender
{
    public const int MaxTelemetryBytes = 256 * 1024;

    /// <summary>
    /// Bytes of messages waiting their turn (not yet published) above which senders wait, however few the messages:
    /// a producer far ahead of the hub holds a bounded amount of memory.
    /// </summary>
    public const int MaxWaitingBytes = 4 * 1024 * 1024;

    /// <summary>Attempts in a row, with no other message acknowledged meanwhile, before a message is given up.</summary>
    public const int MaxFruitlessAttempts = 10;

    private readonly DeviceSession session;
    private readonly DeviceTopics topics;
    private readonly IoTHubDeviceClientOptions options;
    private readonly TimeProvider time;
    private readonly IoTHubSourceLogger log;
    private readonly object gate = new();
    private readonly WaitingMessages ready = new();
    private readonly Queue<Producer> producers = new();
    private readonly Action<Task<MqttClientPublishResult>, object?> onPublished;
    private readonly ITimer watchdog;
    private volatile PlainTopic? plainTopic;
    private long sequence;
    private long acknowledged;
    private int inFlight;
    private int epoch;
    private int acknowledgedOnConnection;
    private int suspendedEpoch = -1;
    private bool pumping;
    private bool closed;
    private long lastProgress;
    private TaskCompletionSource? drained;

    internal TelemetrySender(DeviceSession session, DeviceTopics topics, IoTHubDeviceClientOptions options)
    {
        this.session = session;
        this.topics = topics;
        this.options = options;
        time = options.TimeProvider;
        log = options.Logger.WithSource("Telemetry");
        Window = options.MaxInFlight;
        Capacity = Math.Max(4, 4 * options.MaxInFlight);
        onPublished = OnPublished;
        lastProgress = time.GetTimestamp();
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond * 10, options.OperationTimeout.Ticks / 4));
        watchdog = time.CreateTimer(static state => ((TelemetrySender)state!).Watch(), this, period, period);
    }

    /// <summary>How many messages may wait for their PUBACK at once.</summary>
    public int Window { get; }

    /// <summary>How many messages the outbox holds: those waiting for their PUBACK and those waiting their turn.</summary>
    public int Capacity { get; }

    /// <summary>Messages in the outbox now (sent and not yet acknowledged, or waiting their turn).</summary>
    public int Count
    {
        get
        {
            lock (gate)
            {
                return ready.Count + inFlight;
            }
        }
    }

    /// <summary>Messages acknowledged by the hub since the client was made.</summary>
    public long AcknowledgedCount => Interlocked.Read(ref acknowledged);

    /// <summary>
    /// Puts a message in the outbox, waiting while it is full, and returns the task that completes when the hub has
    /// acknowledged it (its result says when and after how many attempts) or fails with the reason it was given up.
    /// A message rejected before sending (too large, a reserved property name) throws here. Cancelling
    /// <paramref name="cancellationToken"/> stops the wait for room and withdraws the message if it has not been
    /// published yet.
    /// </summary>
    public ValueTask<Task<TelemetrySendResult>> SendAsync(TelemetryMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ObjectDisposedException.ThrowIf(session.IsDisposed, typeof(IoTHubDeviceClient));
        var application = Build(message);
        cancellationToken.ThrowIfCancellationRequested();
        var entry = new Outgoing(this, message, application, cancellationToken);
        Producer? producer;
        lock (gate)
        {
            if (closed || session.IsClosed)
            {
                throw session.Closed();
            }

            if (session.State == IoTHubConnectionState.Disconnected)
            {
                throw SessionFailures.NotConnected(options.DeviceId);
            }

            PurgeWithdrawnLocked();
            if (producers.Count == 0 && HasRoomLocked())
            {
                AdmitLocked(entry);
                producer = null;
            }
            else
            {
                producer = new Producer(entry);
                producers.Enqueue(producer);
            }
        }

        if (producer is null)
        {
            Pump();
            return new ValueTask<Task<TelemetrySendResult>>(entry.Completion.Task);
        }

        if (cancellationToken.CanBeCanceled)
        {
            producer.Registration = cancellationToken.Register(static state => ((Producer)state!).Cancel(), producer);
        }

        return new ValueTask<Task<TelemetrySendResult>>(producer.Admitted.Task);
    }

    /// <summary>Publishes what the window has room for, in order, while the session is connected.</summary>
    internal void Pump()
    {
        lock (gate)
        {
            if (pumping)
            {
                return;
            }

            pumping = true;
        }

        while (true)
        {
            Outgoing? entry;
            lock (gate)
            {
                entry = NextLocked();
                if (entry is null)
                {
                    pumping = false;
                    return;
                }
            }

            Publish(entry);
        }
    }

    /// <summary>A new connection: messages that waited for it go out.</summary>
    internal void OnConnected()
    {
        lock (gate)
        {
            epoch++;
            acknowledgedOnConnection = 0;
            lastProgress = time.GetTimestamp();
        }

        Pump();
    }

    /// <summary>Completes when no message waits for its PUBACK (before a token renewal, with publishing paused).</summary>
    internal Task DrainAsync(CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (inFlight == 0)
            {
                return Task.CompletedTask;
            }

            drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return drained.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// After a lost connection, once each message published on it has its outcome (the acknowledgements that arrived
    /// before the close, and the failures the close caused, are processed in whatever order their continuations run):
    /// how many the hub acknowledged (PUBACK) on that connection. A hub that throttles a device acknowledges what it
    /// took, then closes the connection: a count above zero is progress at the hub's rate, not a refused connection.
    /// </summary>
    internal async Task<int> AcknowledgedOnLostConnectionAsync(CancellationToken cancellationToken)
    {
        await DrainAsync(cancellationToken).ConfigureAwait(false);
        lock (gate)
        {
            return acknowledgedOnConnection;
        }
    }

    /// <summary>The client is closed: every message still in the outbox, and every producer waiting, fails.</summary>
    internal void Close()
    {
        List<Outgoing> left = [];
        List<Producer> waiting;
        lock (gate)
        {
            closed = true;
            while (ready.TryDequeue(out var entry))
            {
                left.Add(entry);
            }

            waiting = [.. producers];
            producers.Clear();
            drained?.TrySetResult();
        }

        watchdog.Dispose();
        foreach (var entry in left)
        {
            entry.Completion.TrySetException(session.Closed());
        }

        foreach (var producer in waiting)
        {
            producer.Fail(session.Closed());
        }
    }

    private Outgoing? NextLocked()
    {
        while (!closed && inFlight < Window && session.State == IoTHubConnectionState.Connected && suspendedEpoch != epoch && ready.TryDequeue(out var entry))
        {
            if (entry.CancellationToken.IsCancellationRequested)
            {
                entry.Completion.TrySetCanceled(entry.CancellationToken);
                continue;
            }

            if (inFlight++ == 0)
            {
                lastProgress = time.GetTimestamp();
            }

            entry.Epoch = epoch;
            entry.Attempts++;
            entry.AcknowledgedBefore = acknowledged;
            return entry;
        }

        return null;
    }

    private void Publish(Outgoing entry)
    {
        Task<MqttClientPublishResult> publish;
        try
        {
            publish = session.Mqtt.PublishAsync(entry.Application, CancellationToken.None);
        }
        catch (Exception ex)
        {
            publish = Task.FromException<MqttClientPublishResult>(ex);
        }

        // Runs on the thread that completes the publish (inline when it already has: a QoS 0 message once written,
        // a publish that failed at once). A failure on the current connection stops the pump, so this cannot loop.
        publish.ContinueWith(onPublished, entry, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void OnPublished(Task<MqttClientPublishResult> publish, object? state)
    {
        var entry = (Outgoing)state!;
        Exception? failure = null;
        TelemetrySendResult? result = null;
        List<Producer>? admitted = null;
        if (publish.IsCompletedSuccessfully && publish.Result.IsSuccess)
        {
            result = new TelemetrySendResult(entry.Message.MessageId, entry.Message.Payload.Length, time.GetUtcNow(), entry.Attempts);
        }
        else if (publish.IsCompletedSuccessfully)
        {
            failure = new IoTHubMqttException(ErrorIds.TelemetryRejected,
                $"The hub rejected the message ({publish.Result.ReasonCode}).", null, entry.Message.MessageId);
        }

        var requeued = false;
        lock (gate)
        {
            inFlight--;
            if (result is not null)
            {
                acknowledged++;
                lastProgress = time.GetTimestamp();
                if (entry.Epoch == epoch && entry.Application.QualityOfServiceLevel == MqttQualityOfServiceLevel.AtLeastOnce)
                {
                    acknowledgedOnConnection++; // a PUBACK: the hub took it (a QoS 0 message is only written)
                }
            }
            else if (failure is null)
            {
                var error = publish.Exception?.InnerException ?? new OperationCanceledException();
                if (closed || session.IsClosed)
                {
                    failure = session.Closed();
                }
                else if (!SessionFailures.IsConnectionLoss(error))
                {
                    failure = error;
                }
                else
                {
                    // Fruitless: no other message was acknowledged since this one was published.
                    entry.Fruitless = acknowledged == entry.AcknowledgedBefore ? entry.Fruitless + 1 : 1;
                    if (entry.Fruitless >= MaxFruitlessAttempts)
                    {
                        failure = new IoTHubMqttException(ErrorIds.TelemetryNotAcknowledged,
                            $"The message was not acknowledged after {entry.Attempts} attempts: {error.Message}", "Check the connection; the hub may be throttling this device.", entry.Message.MessageId, error);
                    }
                    else
                    {
                        // Back in its place; published again once the session has a connection. A failure on the
                        // current connection stops publishing until the next one (the session is reconnecting).
                        entry.WaitingSince = time.GetTimestamp();
                        ready.Enqueue(entry);
                        requeued = true;
                        if (entry.Epoch == epoch)
                        {
                            suspendedEpoch = epoch;
                        }

                        if (log.IsEnabled(IoTHubLogLevel.Verbose))
                        {
                            log.Verbose($"Message {entry.Sequence} not acknowledged ({error.GetType().Name}); it goes again after the reconnect (attempt {entry.Attempts}).");
                        }
                    }
                }
            }

            if (inFlight == 0 && drained is not null)
            {
                drained.TrySetResult();
                drained = null;
            }

            if (!requeued)
            {
                admitted = AdmitProducersLocked();
            }
        }

        if (result is not null)
        {
            entry.Completion.TrySetResult(result);
        }
        else if (failure is not null)
        {
            entry.Completion.TrySetException(failure);
        }

        if (admitted is not null)
        {
            foreach (var producer in admitted)
            {
                producer.Admit();
            }
        }

        Pump();
    }

    /// <summary>
    /// Takes out what was withdrawn (under the lock): producers that stopped waiting, and — when the outbox is full —
    /// unpublished messages whose sender cancelled them (a stopped pipeline), so they take no room from new ones.
    /// </summary>
    private void PurgeWithdrawnLocked()
    {
        while (producers.Count > 0 && producers.Peek().IsCancelled)
        {
            producers.Dequeue();
        }

        if (ready.Count == 0 || HasRoomLocked() || !ready.Any(e => e.CancellationToken.IsCancellationRequested))
        {
            return;
        }

        foreach (var entry in ready.RemoveAll(e => e.CancellationToken.IsCancellationRequested))
        {
            entry.Completion.TrySetCanceled(entry.CancellationToken);
        }
    }

    /// <summary>Lets waiting producers in once the outbox has half emptied (under the lock).</summary>
    private List<Producer>? AdmitProducersLocked()
    {
        if (producers.Count == 0 || ready.Count + inFlight > Capacity / 2 || ready.Bytes > MaxWaitingBytes / 2)
        {
            return null;
        }

        List<Producer>? admitted = null;
        while (producers.Count > 0 && HasRoomLocked())
        {
            var producer = producers.Dequeue();
            if (producer.IsCancelled)
            {
                continue;
            }

            AdmitLocked(producer.Entry);
            (admitted ??= []).Add(producer);
        }

        return admitted;
    }

    private void AdmitLocked(Outgoing entry)
    {
        entry.Sequence = ++sequence;
        entry.WaitingSince = time.GetTimestamp();
        ready.Enqueue(entry);
    }

    /// <summary>Room for one more message: fewer than <see cref="Capacity"/>, and fewer than <see cref="MaxWaitingBytes"/> waiting their turn.</summary>
    private bool HasRoomLocked() => ready.Count + inFlight < Capacity && (ready.Bytes < MaxWaitingBytes || ready.Count == 0);

    /// <summary>
    /// Runs every quarter of the operation timeout: drops a connection on which acknowledgements are overdue, and
    /// fails messages that waited longer than the timeout for a lost connection to come back.
    /// </summary>
    private void Watch()
    {
        var timeout = options.OperationTimeout;
        List<Outgoing>? expired = null;
        List<Producer>? admitted = null;
        var overdue = false;
        lock (gate)
        {
            if (closed)
            {
                return;
            }

            var connected = session.State == IoTHubConnectionState.Connected;
            if (connected && (inFlight > 0 || (ready.Count > 0 && suspendedEpoch == epoch)))
            {
                if (time.GetElapsedTime(lastProgress) >= timeout)
                {
                    overdue = true;
                    lastProgress = time.GetTimestamp();
                }
            }
            else if (!connected && ready.Count > 0)
            {
                var removed = ready.RemoveAll(e => time.GetElapsedTime(e.WaitingSince) >= timeout);
                expired = removed.Count > 0 ? removed : null;
                if (expired is not null)
                {
                    admitted = AdmitProducersLocked();
                }
            }
            else if (!connected)
            {
                lastProgress = time.GetTimestamp();
            }
        }

        if (overdue)
        {
            session.Abort($"The hub acknowledged no message for {timeout.TotalSeconds:0.#} s");
        }

        if (expired is not null)
        {
            var error = SessionFailures.StillDisconnected(options.DeviceId, timeout, session.LastError);
            log.Warning($"{expired.Count} message(s) waited more than {timeout.TotalSeconds:0.#} s for the connection; they fail with NotConnected.");
            foreach (var entry in expired)
            {
                entry.Completion.TrySetException(error);
            }
        }

        if (admitted is not null)
        {
            foreach (var producer in admitted)
            {
                producer.Admit();
            }
        }
    }

    private MqttApplicationMessage Build(TelemetryMessage message)
    {
        if (message.Payload.Length > MaxTelemetryBytes)
        {
            throw new IoTHubMqttException(ErrorIds.MessageTooLarge,
                $"The message body is {message.Payload.Length} bytes; IoT Hub accepts at most {MaxTelemetryBytes} bytes (256 KB).", "Split the data into smaller messages.", message.MessageId);
        }

        if (message.QualityOfService is not (TelemetryQualityOfService.AtMostOnce or TelemetryQualityOfService.AtLeastOnce))
        {
            throw new IoTHubMqttException(ErrorIds.InvalidQualityOfService,
                "IoT Hub accepts telemetry at QoS 0 or 1 only (QoS 2 closes the connection).", "Use QoS 0 or 1.", message.MessageId);
        }

        return new MqttApplicationMessage
        {
            Topic = Topic(message),
            Payload = new System.Buffers.ReadOnlySequence<byte>(message.Payload),
            QualityOfServiceLevel = message.QualityOfService == TelemetryQualityOfService.AtMostOnce ? MqttQualityOfServiceLevel.AtMostOnce : MqttQualityOfServiceLevel.AtLeastOnce,
        };
    }

    /// <summary>
    /// The topic of a message. A stream of messages with only a content type and encoding (a pipeline of strings)
    /// shares one topic, encoded once.
    /// </summary>
    private string Topic(TelemetryMessage message)
    {
        if (message is { MessageId: null, CorrelationId: null, UserId: null, CreationTime: null, ExpiryTime: null, Properties.Count: 0 })
        {
            var cached = plainTopic;
            if (cached is not null && string.Equals(cached.ContentType, message.ContentType, StringComparison.Ordinal) && string.Equals(cached.ContentEncoding, message.ContentEncoding, StringComparison.Ordinal))
            {
                return cached.Topic;
            }

            cached = new PlainTopic(message.ContentType, message.ContentEncoding, topics.Telemetry(message.PropertyBagEntries()));
            plainTopic = cached;
            return cached.Topic;
        }

        return topics.Telemetry(message.PropertyBagEntries());
    }

    private sealed record PlainTopic(string? ContentType, string? ContentEncoding, string Topic);

    /// <summary>Messages waiting their turn, in the order they were sent (a message sent again goes back to its place).</summary>
    private sealed class WaitingMessages
    {
        private readonly PriorityQueue<Outgoing, long> queue = new();

        public int Count => queue.Count;

        public long Bytes { get; private set; }

        public void Enqueue(Outgoing entry)
        {
            queue.Enqueue(entry, entry.Sequence);
            Bytes += entry.Message.Payload.Length;
        }

        public bool TryDequeue([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Outgoing? entry)
        {
            if (!queue.TryDequeue(out entry, out _))
            {
                return false;
            }

            Bytes -= entry.Message.Payload.Length;
            return true;
        }

        public bool Any(Func<Outgoing, bool> match) => queue.UnorderedItems.Any(e => match(e.Element));

        /// <summary>Takes out the messages <paramref name="match"/> selects; the others keep their order.</summary>
        public List<Outgoing> RemoveAll(Func<Outgoing, bool> match)
        {
            var removed = new List<Outgoing>();
            var kept = new List<Outgoing>(queue.Count);
            while (TryDequeue(out var entry))
            {
                (match(entry) ? removed : kept).Add(entry);
            }

            kept.ForEach(Enqueue);
            return removed;
        }
    }

    /// <summary>A message in the outbox.</summary>
    private sealed class Outgoing(TelemetrySender sender, TelemetryMessage message, MqttApplicationMessage application, CancellationToken cancellationToken)
    {
        public TelemetrySender Sender { get; } = sender;

        public TelemetryMessage Message { get; } = message;

        public MqttApplicationMessage Application { get; } = application;

        public CancellationToken CancellationToken { get; } = cancellationToken;

        public TaskCompletionSource<TelemetrySendResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Sequence { get; set; }

        public int Attempts { get; set; }

        public int Fruitless { get; set; }

        public long AcknowledgedBefore { get; set; }

        public int Epoch { get; set; }

        public long WaitingSince { get; set; }
    }

    /// <summary>A caller of <see cref="SendAsync"/> waiting for room.</summary>
    private sealed class Producer(Outgoing entry)
    {
        private int done;

        public Outgoing Entry { get; } = entry;

        public TaskCompletionSource<Task<TelemetrySendResult>> Admitted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public CancellationTokenRegistration Registration { get; set; }

        public bool IsCancelled => Volatile.Read(ref done) == 2;

        public void Admit()
        {
            if (Interlocked.CompareExchange(ref done, 1, 0) == 0)
            {
                Registration.Dispose();
                Admitted.TrySetResult(Entry.Completion.Task);
                Entry.Sender.Pump();
            }
        }

        public void Fail(Exception error)
        {
            if (Interlocked.CompareExchange(ref done, 1, 0) == 0)
            {
                Registration.Dispose();
                Admitted.TrySetException(error);
            }
        }

        public void Cancel()
        {
            if (Interlocked.CompareExchange(ref done, 2, 0) == 0)
            {
                Admitted.TrySetCanceled(Entry.CancellationToken);
            }
        }
    }
}
