using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// An IoT Hub device (or module) over MQTT 3.1.1: telemetry with an in-flight window, cloud-to-device messages
/// completed on request, direct methods, the twin, SAS token renewal and reconnection with backoff.
/// Publish, receive and twin calls may run concurrently; connect and dispose may not.
/// See https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub
/// </summary>
public sealed class IoTHubDeviceClient : IAsyncDisposable
{
    public const int MaxTelemetryBytes = 256 * 1024;
    public const int MaxMethodResponseBytes = 128 * 1024;
    public const int MaxTwinSectionBytes = 32 * 1024;
    private const int MaxPublishAttempts = 10;

    /// <summary>A connection that ends sooner than this (a throttling hub closing it) makes the next reconnect wait longer.</summary>
    private static readonly TimeSpan StableConnection = TimeSpan.FromSeconds(10);

    private readonly IoTHubDeviceClientOptions options;
    private readonly DeviceTopics topics;
    private readonly IMqttClient mqtt;
    private readonly TlsTrust trust;
    private readonly SemaphoreSlim connectLock = new(1, 1);
    private readonly SemaphoreSlim inFlight;
    private readonly CancellationTokenSource lifetime = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource<TwinResponse>> pendingTwin = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> registeredMethods = new(StringComparer.Ordinal);
    private readonly Channel<CloudToDeviceMessage> cloudToDevice = Channel.CreateUnbounded<CloudToDeviceMessage>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly Channel<MethodRequest> methodRequests = Channel.CreateUnbounded<MethodRequest>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly Channel<QueuedTelemetry> outbox = Channel.CreateUnbounded<QueuedTelemetry>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<DesiredPropertiesUpdate> desiredUpdates = Channel.CreateUnbounded<DesiredPropertiesUpdate>(new UnboundedChannelOptions { SingleWriter = true });
    private TaskCompletionSource connected = NewSignal();
    private Task? reconnectTask;
    private Task? senderTask;
    private volatile PlainTopic? plainTelemetryTopic;
    private int queuedTelemetry;
    private Backoff? reconnectBackoff;
    private bool lastConnectionShortLived;
    private Timer? renewTimer;
    private long requestCounter;
    private long acknowledgedCount;
    private int expectedDisconnect;
    private int state = (int)IoTHubConnectionState.Disconnected;
    private int disposed;

    public IoTHubDeviceClient(IoTHubDeviceClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        topics = new DeviceTopics(options.DeviceId, options.ModuleId);
        trust = new TlsTrust(options.CaCertificatePath, options.UseSystemTrustStore);
        inFlight = new SemaphoreSlim(options.MaxInFlight, options.MaxInFlight);
        mqtt = new MqttClientFactory().CreateMqttClient();
        mqtt.ApplicationMessageReceivedAsync += OnMessageAsync;
        mqtt.DisconnectedAsync += OnDisconnectedAsync;
    }

    public string HostName => options.HostName;

    public string ConnectHostName => options.EffectiveConnectHost;

    public int Port => options.EffectivePort;

    public string DeviceId => options.DeviceId;

    public string? ModuleId => options.ModuleId;

    public IoTHubTransport Transport => options.Transport;

    public IoTHubConnectionState State => (IoTHubConnectionState)Volatile.Read(ref state);

    /// <summary>When the current SAS token expires (null for X.509).</summary>
    public DateTimeOffset? TokenExpiresAt { get; private set; }

    public DateTimeOffset? ConnectedSince { get; private set; }

    /// <summary>How many times the connection was re-established (token renewals included).</summary>
    public int ReconnectCount { get; private set; }

    /// <summary>How many times the SAS token was renewed.</summary>
    public int TokenRenewalCount { get; private set; }

    /// <summary>The last connection failure, without secrets.</summary>
    public string? LastError { get; private set; }

    /// <summary>Raised on every state change; handlers must be quick and must not throw.</summary>
    public event Action<IoTHubConnectionState>? StateChanged;

    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        await connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (mqtt.IsConnected)
            {
                return;
            }

            SetState(IoTHubConnectionState.Connecting);
            var backoff = new Backoff(TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(2));
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await ConnectCoreAsync(cancellationToken).ConfigureAwait(false);
                    return;
                }
                catch (IoTHubMqttException ex) when (ex.ErrorId == "ConnectionFailed" && attempt < 3 && !cancellationToken.IsCancellationRequested)
                {
                    // A connection dropped before the CONNACK (a busy server, a reset) is worth another try;
                    // refused credentials, TLS failures and timeouts are not.
                    Log($"Connect attempt {attempt} failed ({ex.Message}); retrying.");
                    await Task.Delay(backoff.Next(), cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    SetState(IoTHubConnectionState.Disconnected);
                    throw;
                }
            }
        }
        finally
        {
            connectLock.Release();
        }
    }

    /// <summary>Disconnects for good: no reconnect follows. Unacknowledged C2D messages stay queued at the hub.</summary>
    public async Task DisconnectAsync(CancellationToken cancellationToken = default)
    {
        if (State == IoTHubConnectionState.Closed)
        {
            return;
        }

        Interlocked.Exchange(ref expectedDisconnect, 1);
        await lifetime.CancelAsync().ConfigureAwait(false);
        renewTimer?.Dispose();
        try
        {
            if (mqtt.IsConnected)
            {
                await mqtt.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.NormalDisconnection).Build(), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or ObjectDisposedException)
        {
            Log($"Disconnect: {ex.Message}");
        }

        SetState(IoTHubConnectionState.Closed);
        connected.TrySetException(Closed());
        foreach (var pending in pendingTwin.Values)
        {
            pending.TrySetException(Closed());
        }

        outbox.Writer.TryComplete();
        cloudToDevice.Writer.TryComplete();
        methodRequests.Writer.TryComplete();
        desiredUpdates.Writer.TryComplete();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await DisconnectAsync(timeout.Token).ConfigureAwait(false);
        if (reconnectTask is not null)
        {
            await reconnectTask.ConfigureAwait(false);
        }

        if (senderTask is not null)
        {
            await senderTask.ConfigureAwait(false);
        }

        mqtt.Dispose();
        lifetime.Dispose();
        connectLock.Dispose();
        inFlight.Dispose();
    }

    #region Telemetry

    /// <summary>Publishes one message (QoS 1) and waits for the hub's PUBACK, retrying across reconnects.</summary>
    public async Task<TelemetrySendResult> SendTelemetryAsync(TelemetryMessage message, CancellationToken cancellationToken = default)
    {
        var acknowledged = await EnqueueTelemetryAsync(message, cancellationToken).ConfigureAwait(false);
        return await acknowledged.ConfigureAwait(false);
    }

    /// <summary>
    /// Takes a place in the in-flight window (waiting while it is full) and starts the publish. The returned task
    /// completes at the PUBACK: callers stream many messages without waiting for each acknowledgement.
    /// </summary>
    public async Task<Task<TelemetrySendResult>> EnqueueTelemetryAsync(TelemetryMessage message, CancellationToken cancellationToken = default) =>
        await EnqueueTelemetryAsync(message, atMostOnce: false, cancellationToken).ConfigureAwait(false);

    /// <summary>As <see cref="EnqueueTelemetryAsync(TelemetryMessage, CancellationToken)"/>; QoS 0 (<paramref name="atMostOnce"/>) completes when the message is written.</summary>
    public async Task<Task<TelemetrySendResult>> EnqueueTelemetryAsync(TelemetryMessage message, bool atMostOnce, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ThrowIfDisposed();
        var application = BuildTelemetry(message, atMostOnce);
        await inFlight.WaitAsync(cancellationToken).ConfigureAwait(false);
        return PublishWithRetryAsync(application, message, cancellationToken);
    }

    /// <summary>
    /// Queues a message without waiting and returns the task that completes at its PUBACK. One sender publishes queued
    /// messages in order as places in the in-flight window free up, so a producer (a pipeline) is not woken for every
    /// acknowledgement. The queue is not bounded: producers keep <see cref="QueuedTelemetryCount"/> in check, e.g. by
    /// waiting for an earlier message's acknowledgement once about a window is queued.
    /// </summary>
    public Task<TelemetrySendResult> QueueTelemetry(TelemetryMessage message, bool atMostOnce = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ThrowIfDisposed();
        var application = BuildTelemetry(message, atMostOnce);
        if (State == IoTHubConnectionState.Closed)
        {
            throw Closed();
        }

        var item = new QueuedTelemetry(application, message, cancellationToken, new TaskCompletionSource<TelemetrySendResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        Interlocked.Increment(ref queuedTelemetry);
        if (!outbox.Writer.TryWrite(item))
        {
            Interlocked.Decrement(ref queuedTelemetry);
            throw Closed();
        }

        if (senderTask is null)
        {
            lock (outbox)
            {
                senderTask ??= Task.Run(SendQueuedAsync);
            }
        }

        return item.Completion.Task;
    }

    /// <summary>Messages queued by <see cref="QueueTelemetry"/> that wait for a place in the in-flight window.</summary>
    public int QueuedTelemetryCount => Volatile.Read(ref queuedTelemetry);

    /// <summary>How many telemetry publishes may wait for their PUBACK at once.</summary>
    public int MaxInFlight => options.MaxInFlight;

    private async Task SendQueuedAsync()
    {
        var reader = outbox.Reader;

        // The window wait observes both the client's lifetime and the caller's token; callers pass the same token
        // for many messages, so the linked source is made once per token, not per message.
        CancellationToken linkedFor = default;
        CancellationTokenSource? linked = null;
        try
        {
            while (await reader.WaitToReadAsync(lifetime.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var item))
                {
                    Interlocked.Decrement(ref queuedTelemetry);
                    if (item.CancellationToken.IsCancellationRequested)
                    {
                        item.Completion.TrySetCanceled(item.CancellationToken);
                        continue;
                    }

                    if (linked is null || linkedFor != item.CancellationToken)
                    {
                        linked?.Dispose();
                        linked = CancellationTokenSource.CreateLinkedTokenSource(lifetime.Token, item.CancellationToken);
                        linkedFor = item.CancellationToken;
                    }

                    try
                    {
                        await inFlight.WaitAsync(linked.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!lifetime.IsCancellationRequested)
                    {
                        item.Completion.TrySetCanceled(item.CancellationToken);
                        continue;
                    }
                    catch (OperationCanceledException)
                    {
                        item.Completion.TrySetException(Closed());
                        break;
                    }

                    // Started in order; it releases its place in the window when it ends.
                    _ = CompleteAsync(item, PublishWithRetryAsync(item.Application, item.Message, item.CancellationToken));
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            linked?.Dispose();
        }

        while (reader.TryRead(out var left))
        {
            Interlocked.Decrement(ref queuedTelemetry);
            left.Completion.TrySetException(Closed());
        }

        static async Task CompleteAsync(QueuedTelemetry item, Task<TelemetrySendResult> publish)
        {
            try
            {
                item.Completion.TrySetResult(await publish.ConfigureAwait(false));
            }
            catch (OperationCanceledException) when (item.CancellationToken.IsCancellationRequested)
            {
                item.Completion.TrySetCanceled(item.CancellationToken);
            }
            catch (Exception ex)
            {
                item.Completion.TrySetException(ex);
            }
        }
    }

    private MqttApplicationMessage BuildTelemetry(TelemetryMessage message, bool atMostOnce)
    {
        if (message.Body.Length > MaxTelemetryBytes)
        {
            throw new IoTHubMqttException("MessageTooLarge", IoTHubErrorKind.InvalidArgument,
                $"The message body is {message.Body.Length} bytes; IoT Hub accepts at most {MaxTelemetryBytes} bytes (256 KB).", "Split the data into smaller messages.", message.MessageId);
        }

        return new MqttApplicationMessageBuilder()
            .WithTopic(TelemetryTopic(message))
            .WithPayload(message.Body)
            .WithQualityOfServiceLevel(atMostOnce ? MqttQualityOfServiceLevel.AtMostOnce : MqttQualityOfServiceLevel.AtLeastOnce)
            .Build();
    }

    /// <summary>
    /// The topic of a message. A stream of messages with only a content type and encoding (a pipeline of strings)
    /// shares one topic, encoded once.
    /// </summary>
    private string TelemetryTopic(TelemetryMessage message)
    {
        if (message is { MessageId: null, CorrelationId: null, UserId: null, CreationTime: null, ExpiryTime: null, Properties.Count: 0 })
        {
            var cached = plainTelemetryTopic;
            if (cached is not null && string.Equals(cached.ContentType, message.ContentType, StringComparison.Ordinal) && string.Equals(cached.ContentEncoding, message.ContentEncoding, StringComparison.Ordinal))
            {
                return cached.Topic;
            }

            cached = new PlainTopic(message.ContentType, message.ContentEncoding, topics.Telemetry(message.PropertyBagEntries()));
            plainTelemetryTopic = cached;
            return cached.Topic;
        }

        return topics.Telemetry(message.PropertyBagEntries());
    }

    private sealed record PlainTopic(string? ContentType, string? ContentEncoding, string Topic);

    private sealed record QueuedTelemetry(MqttApplicationMessage Application, TelemetryMessage Message, CancellationToken CancellationToken, TaskCompletionSource<TelemetrySendResult> Completion);

    private async Task<TelemetrySendResult> PublishWithRetryAsync(MqttApplicationMessage application, TelemetryMessage message, CancellationToken cancellationToken)
    {
        try
        {
            // A throttling hub closes the connection instead of acknowledging: the message is sent again after the
            // reconnect, with a growing, jittered pause. It is given up only after MaxPublishAttempts failures in a
            // row during which no other message was acknowledged (a hub that refuses this message, not a busy one).
            Backoff? backoff = null;
            var fruitless = 0;
            for (var attempt = 1; ; attempt++)
            {
                await WaitConnectedAsync(cancellationToken).ConfigureAwait(false);
                var acknowledgedBefore = Volatile.Read(ref acknowledgedCount);
                try
                {
                    // The publish itself observes the caller's token; the acknowledgement wait is bounded here.
                    var result = await mqtt.PublishAsync(application, cancellationToken).WaitAsync(options.OperationTimeout, lifetime.Token).ConfigureAwait(false);
                    if (result.IsSuccess)
                    {
                        Interlocked.Increment(ref acknowledgedCount);
                        return new TelemetrySendResult(message.MessageId, message.Body.Length, DateTimeOffset.UtcNow, attempt);
                    }

                    throw new IoTHubMqttException("TelemetryRejected", IoTHubErrorKind.ProtocolError,
                        $"The hub rejected the message ({result.ReasonCode}).", null, message.MessageId);
                }
                catch (Exception ex) when (IsTransient(ex) && !cancellationToken.IsCancellationRequested && !lifetime.IsCancellationRequested)
                {
                    fruitless = Volatile.Read(ref acknowledgedCount) == acknowledgedBefore ? fruitless + 1 : 1;
                    if (fruitless >= MaxPublishAttempts)
                    {
                        throw new IoTHubMqttException("TelemetryNotAcknowledged", IoTHubErrorKind.ConnectionError,
                            $"The message was not acknowledged after {attempt} attempts: {ex.Message}", "Check the connection; the hub may be throttling this device.", message.MessageId, ex);
                    }

                    backoff ??= new Backoff(TimeSpan.FromMilliseconds(50), TimeSpan.FromTicks(Math.Min(options.ReconnectMaxDelay.Ticks, TimeSpan.FromSeconds(5).Ticks)));
                    var delay = backoff.Next();
                    Log($"Publish attempt {attempt} failed ({ex.GetType().Name}); retrying in {delay.TotalMilliseconds:0} ms, after reconnecting if needed.");
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (lifetime.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    throw Closed();
                }
            }
        }
        finally
        {
            if (Volatile.Read(ref disposed) == 0)
            {
                inFlight.Release();
            }
        }
    }

    #endregion

    #region Cloud-to-device

    /// <summary>Waits for the next C2D message; null when none arrives within <paramref name="timeout"/>.</summary>
    public Task<CloudToDeviceMessage?> ReceiveCloudToDeviceAsync(TimeSpan? timeout, CancellationToken cancellationToken = default) =>
        ReadAsync(cloudToDevice.Reader, timeout, cancellationToken);

    #endregion

    #region Methods

    /// <summary>Calls of this method name are queued for <see cref="ReceiveMethodRequestAsync"/>; others are answered 501.</summary>
    public void RegisterMethod(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        registeredMethods[name] = 0;
    }

    public bool UnregisterMethod(string name) => registeredMethods.TryRemove(name, out _);

    public IReadOnlyCollection<string> RegisteredMethods => registeredMethods.Keys.ToList();

    public Task<MethodRequest?> ReceiveMethodRequestAsync(TimeSpan? timeout, CancellationToken cancellationToken = default) =>
        ReadAsync(methodRequests.Reader, timeout, cancellationToken);

    /// <summary>Answers a method call with a status and a JSON payload (null becomes JSON null).</summary>
    public async Task RespondToMethodAsync(MethodRequest request, int status, byte[]? jsonPayload, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var payload = jsonPayload is null || jsonPayload.Length == 0 ? "null"u8.ToArray() : jsonPayload;
        if (payload.Length > MaxMethodResponseBytes)
        {
            throw new IoTHubMqttException("MethodResponseTooLarge", IoTHubErrorKind.InvalidArgument,
                $"The response to '{request.Name}' is {payload.Length} bytes; at most {MaxMethodResponseBytes} bytes (128 KB) are allowed.", null, request.Name);
        }

        await WaitConnectedAsync(cancellationToken).ConfigureAwait(false);
        var message = new MqttApplicationMessageBuilder().WithTopic(DeviceTopics.MethodResponse(status, request.RequestId)).WithPayload(payload).Build();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.Token);
        timeout.CancelAfter(options.OperationTimeout);
        try
        {
            await mqtt.PublishAsync(message, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTransient(ex) && ex is not OperationCanceledException)
        {
            // The service will answer the caller with a timeout; the device can do nothing more for this call.
            throw new IoTHubMqttException("MethodResponseNotSent", IoTHubErrorKind.ConnectionError,
                $"The answer to '{request.Name}' could not be sent: {ex.Message}", "Check the connection.", request.Name, ex);
        }
    }

    #endregion

    #region Twin

    public async Task<DeviceTwin> GetTwinAsync(CancellationToken cancellationToken = default)
    {
        var response = await TwinRequestAsync(DeviceTopics.TwinGet, [], cancellationToken).ConfigureAwait(false);
        try
        {
            return DeviceTwin.Parse(response.Body);
        }
        catch (Exception ex) when (ex is JsonException or FormatException)
        {
            throw new IoTHubMqttException("TwinMalformed", IoTHubErrorKind.ProtocolError, "The hub sent a twin that is not valid JSON.", null, DeviceId, ex);
        }
    }

    /// <summary>Patches reported properties (null values delete) and returns the new reported version.</summary>
    public async Task<long> UpdateReportedPropertiesAsync(JsonObject patch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(patch);
        var body = Encoding.UTF8.GetBytes(patch.ToJsonString());
        if (body.Length > MaxTwinSectionBytes)
        {
            throw new IoTHubMqttException("TwinPatchTooLarge", IoTHubErrorKind.InvalidArgument,
                $"The reported-properties patch is {body.Length} bytes; a twin section holds at most {MaxTwinSectionBytes} bytes (32 KB).", null, DeviceId);
        }

        var depth = Depth(patch);
        if (depth > 10)
        {
            throw new IoTHubMqttException("TwinPatchTooDeep", IoTHubErrorKind.InvalidArgument,
                $"The reported-properties patch is nested {depth} levels deep; IoT Hub allows 10.", null, DeviceId);
        }

        var response = await TwinRequestAsync(DeviceTopics.TwinPatchReported, body, cancellationToken).ConfigureAwait(false);
        return response.Version ?? 0;
    }

    /// <summary>Waits for the next desired-properties patch; null when none arrives within <paramref name="timeout"/>.</summary>
    public Task<DesiredPropertiesUpdate?> ReceiveDesiredPropertiesAsync(TimeSpan? timeout, CancellationToken cancellationToken = default) =>
        ReadAsync(desiredUpdates.Reader, timeout, cancellationToken);

    private async Task<TwinResponse> TwinRequestAsync(Func<string, string> topicFor, byte[] body, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        var backoff = new Backoff(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10));

        // Throttled (429) and failed (5xx) requests are retried with backoff for as long as one operation may take.
        var retryUntil = DateTime.UtcNow + options.OperationTimeout;
        for (var attempt = 1; ; attempt++)
        {
            await WaitConnectedAsync(cancellationToken).ConfigureAwait(false);
            var rid = Interlocked.Increment(ref requestCounter).ToString(CultureInfo.InvariantCulture);
            var pending = new TaskCompletionSource<TwinResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
            pendingTwin[rid] = pending;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.Token);
                timeout.CancelAfter(options.OperationTimeout);
                var message = new MqttApplicationMessageBuilder().WithTopic(topicFor(rid)).WithPayload(body).Build();
                await mqtt.PublishAsync(message, timeout.Token).ConfigureAwait(false);
                var response = await pending.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
                if (response.Status is >= 200 and < 300)
                {
                    return response;
                }

                var delay = backoff.Next();
                if ((response.Status == 429 || response.Status >= 500) && DateTime.UtcNow + delay < retryUntil)
                {
                    Log($"Twin request answered {response.Status}; retrying in {delay.TotalMilliseconds:0} ms.");
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                throw TwinFailure(response);
            }
            catch (Exception ex) when (IsTransient(ex) && ex is not OperationCanceledException && !cancellationToken.IsCancellationRequested && !lifetime.IsCancellationRequested)
            {
                if (attempt >= 5)
                {
                    throw new IoTHubMqttException("NotConnected", IoTHubErrorKind.ConnectionError,
                        $"The twin request failed {attempt} times: {ex.Message}", "Check the connection; it comes back by itself when the hub is reachable.", DeviceId, ex);
                }

                Log($"Twin request attempt {attempt} failed ({ex.GetType().Name}); retrying.");
                await Task.Delay(backoff.Next(), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && !lifetime.IsCancellationRequested)
            {
                throw new IoTHubMqttException("TwinRequestTimedOut", IoTHubErrorKind.Timeout,
                    $"The hub did not answer the twin request within {options.OperationTimeout.TotalSeconds:0} s.", null, DeviceId);
            }
            finally
            {
                pendingTwin.TryRemove(rid, out _);
            }
        }
    }

    private IoTHubMqttException TwinFailure(TwinResponse response)
    {
        var detail = response.Body.Length == 0 ? string.Empty : ": " + Encoding.UTF8.GetString(response.Body);
        return response.Status switch
        {
            400 => new IoTHubMqttException("TwinRequestInvalid", IoTHubErrorKind.InvalidArgument, $"The hub rejected the twin request (400){detail}", null, DeviceId),
            401 or 403 => new IoTHubMqttException("IoTHubUnauthorized", IoTHubErrorKind.Unauthorized, $"The hub refused the twin request ({response.Status}).", null, DeviceId),
            404 => new IoTHubMqttException("TwinNotFound", IoTHubErrorKind.NotFound, $"The hub has no twin for this device (404).", null, DeviceId),
            413 => new IoTHubMqttException("TwinPatchTooLarge", IoTHubErrorKind.InvalidArgument, $"The twin patch is too large (413){detail}", null, DeviceId),
            429 => new IoTHubMqttException("IoTHubThrottled", IoTHubErrorKind.Throttled, "The hub is throttling twin requests (429).", "Wait and try again, or lower the request rate.", DeviceId),
            _ => new IoTHubMqttException("TwinRequestFailed", IoTHubErrorKind.ProtocolError, $"The twin request failed with status {response.Status}{detail}", null, DeviceId),
        };
    }

    private static int Depth(JsonNode? node) => node switch
    {
        JsonObject o => 1 + (o.Count == 0 ? 0 : o.Max(p => Depth(p.Value))),
        JsonArray a => 1 + (a.Count == 0 ? 0 : a.Max(Depth)),
        _ => 0,
    };

    #endregion

    #region Connection

    private async Task ConnectCoreAsync(CancellationToken cancellationToken)
    {
        var builder = new MqttClientOptionsBuilder()
            .WithProtocolVersion(MqttProtocolVersion.V311)
            .WithClientId(topics.ClientId)
            .WithCleanSession(options.CleanSession)
            .WithKeepAlivePeriod(options.KeepAlive)
            .WithTimeout(options.OperationTimeout);
        string? password = null;
        if (options.SharedAccessKey is not null)
        {
            var now = DateTimeOffset.UtcNow;
            TokenExpiresAt = now + options.TokenTimeToLive;
            password = SasToken.Create(options.ResourceUri, options.SharedAccessKey, TokenExpiresAt.Value, null, now);
        }
        else if (options.SharedAccessSignature is not null)
        {
            var info = SasToken.Parse(options.SharedAccessSignature);
            if (info.Expiry <= DateTimeOffset.UtcNow)
            {
                throw new IoTHubMqttException("SasTokenExpired", IoTHubErrorKind.Unauthorized,
                    $"The SAS token expired at {info.Expiry.UtcDateTime:u}.", "Create a new token, or connect with the device key so tokens are renewed.", DeviceId);
            }

            TokenExpiresAt = info.Expiry;
            password = options.SharedAccessSignature;
        }

        builder.WithCredentials(topics.UserName(options.HostName, options.ModelId, options.ProductInfo), password ?? string.Empty);
        var host = options.EffectiveConnectHost;
        if (options.Transport == IoTHubTransport.WebSocket)
        {
            builder.WithWebSocketServer(ws =>
            {
                var uri = $"wss://{host}:{options.EffectivePort}/$iothub/websocket";
                ws.WithUri(uri).WithSubProtocols(["mqtt"]);
                if (options.Proxy?.GetProxy(new Uri($"https://{host}:{options.EffectivePort}/")) is { } proxyUri && !options.Proxy.IsBypassed(new Uri(uri.Replace("wss://", "https://", StringComparison.Ordinal))))
                {
                    var credential = options.Proxy.Credentials?.GetCredential(proxyUri, "Basic");
                    ws.WithProxyOptions(p =>
                    {
                        p.WithAddress(proxyUri.ToString());
                        if (credential is not null)
                        {
                            p.WithUsername(credential.UserName).WithPassword(credential.Password).WithDomain(credential.Domain);
                        }
                    });
                }
            });
        }
        else
        {
            builder.WithTcpServer(host, options.EffectivePort);
        }

        if (options.Transport != IoTHubTransport.MqttNoTls)
        {
            builder.WithTlsOptions(tls =>
            {
                tls.UseTls(true)
                    .WithTargetHost(host)
                    .WithSslProtocols(SslProtocols.Tls12 | SslProtocols.Tls13)
                    .WithCertificateValidationHandler(e => trust.Validate(e.Certificate, e.Chain, e.SslPolicyErrors));
                if (options.ClientCertificate is not null)
                {
                    tls.WithClientCertificates([options.ClientCertificate]);
                }
            });
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.Token);
        timeout.CancelAfter(options.OperationTimeout);
        MqttClientConnectResult result;
        try
        {
            Log($"Connecting to {host}:{options.EffectivePort} ({options.Transport}) as {topics.ClientId}.");
            result = await mqtt.ConnectAsync(builder.Build(), timeout.Token).ConfigureAwait(false);
        }
        catch (MqttConnectingFailedException ex)
        {
            // MQTTnet 5 returns a refused CONNACK as a result; this exception is a failure before the CONNACK.
            throw MapCommunicationFailure(host, ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested && !lifetime.IsCancellationRequested)
        {
            throw new IoTHubMqttException("ConnectTimedOut", IoTHubErrorKind.Timeout,
                $"No answer from {host}:{options.EffectivePort} within {options.OperationTimeout.TotalSeconds:0} s.",
                "Check the host name and port, and that outbound port 8883 (or 443 with -Transport WebSocket) is open.", host, ex);
        }
        catch (MqttCommunicationException ex)
        {
            throw MapCommunicationFailure(host, ex);
        }

        if (result.ResultCode != MqttClientConnectResultCode.Success)
        {
            throw MapConnectFailure(result.ResultCode, null);
        }

        var subscribe = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(topics.CloudToDeviceSubscription, MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter(DeviceTopics.MethodsSubscription, MqttQualityOfServiceLevel.AtMostOnce)
            .WithTopicFilter(DeviceTopics.TwinResponseSubscription, MqttQualityOfServiceLevel.AtMostOnce)
            .WithTopicFilter(DeviceTopics.DesiredPropertiesSubscription, MqttQualityOfServiceLevel.AtMostOnce)
            .Build();
        try
        {
            await mqtt.SubscribeAsync(subscribe, timeout.Token).ConfigureAwait(false);
        }
        catch (MqttCommunicationException ex)
        {
            throw MapCommunicationFailure(host, ex);
        }

        ConnectedSince = DateTimeOffset.UtcNow;
        LastError = null;
        Interlocked.Exchange(ref expectedDisconnect, 0);
        ScheduleRenewal();
        SetState(IoTHubConnectionState.Connected);
        connected.TrySetResult();
        Log($"Connected; session present: {result.IsSessionPresent}.");
    }

    private void ScheduleRenewal()
    {
        renewTimer?.Dispose();
        if (options.SharedAccessKey is null || TokenExpiresAt is null)
        {
            return;
        }

        var due = TimeSpan.FromTicks((long)(options.TokenTimeToLive.Ticks * options.TokenRenewalFraction));
        renewTimer = new Timer(_ => _ = RenewTokenAsync(), null, due, Timeout.InfiniteTimeSpan);
    }

    /// <summary>MQTT cannot change a password on a live connection: renew by reconnecting with a new token.</summary>
    private async Task RenewTokenAsync()
    {
        if (lifetime.IsCancellationRequested)
        {
            return;
        }

        try
        {
            await connectLock.WaitAsync(lifetime.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            if (!mqtt.IsConnected)
            {
                return; // the reconnect loop will connect with a fresh token
            }

            Log("Renewing the SAS token.");
            Interlocked.Exchange(ref expectedDisconnect, 1);
            connected = NewSignal();
            SetState(IoTHubConnectionState.Reconnecting);
            try
            {
                await mqtt.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), lifetime.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException)
            {
                Log($"Disconnect before renewal: {ex.Message}");
            }

            TokenRenewalCount++;
            try
            {
                await ConnectCoreAsync(lifetime.Token).ConfigureAwait(false);
                ReconnectCount++;
            }
            catch (Exception ex) when (!lifetime.IsCancellationRequested)
            {
                LastError = ex.Message;
                Log($"Reconnect after renewal failed: {ex.Message}");
                StartReconnectLoop();
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            connectLock.Release();
        }
    }

    private Task OnDisconnectedAsync(MqttClientDisconnectedEventArgs e)
    {
        if (!e.ClientWasConnected || Volatile.Read(ref expectedDisconnect) != 0 || lifetime.IsCancellationRequested)
        {
            return Task.CompletedTask;
        }

        LastError = e.Exception?.Message ?? e.Reason.ToString();
        lastConnectionShortLived = ConnectedSince is { } since && DateTimeOffset.UtcNow - since < StableConnection;
        Log($"Connection lost ({e.Reason}); reconnecting.");
        StartReconnectLoop();
        return Task.CompletedTask;
    }

    private void StartReconnectLoop()
    {
        lock (pendingTwin)
        {
            if (reconnectTask is { IsCompleted: false } || lifetime.IsCancellationRequested)
            {
                return;
            }

            if (connected.Task.IsCompleted)
            {
                connected = NewSignal();
            }

            SetState(IoTHubConnectionState.Reconnecting);
            reconnectTask = Task.Run(ReconnectLoopAsync);
        }
    }

    private async Task ReconnectLoopAsync()
    {
        // The backoff carries over from one lost connection to the next while connections keep ending soon after
        // they were made (a hub that throttles this device): then the pause comes before the first attempt too.
        var backoff = reconnectBackoff ??= new Backoff(options.ReconnectInitialDelay, options.ReconnectMaxDelay);
        if (!lastConnectionShortLived)
        {
            backoff.Reset();
        }
        else if (!await PauseAsync(backoff, "The connection ended soon after it was made").ConfigureAwait(false))
        {
            return;
        }

        while (!lifetime.IsCancellationRequested)
        {
            try
            {
                await connectLock.WaitAsync(lifetime.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                if (mqtt.IsConnected)
                {
                    return;
                }

                await ConnectCoreAsync(lifetime.Token).ConfigureAwait(false);
                ReconnectCount++;
                return;
            }
            catch (IoTHubMqttException ex) when (ex.ErrorId == "SasTokenExpired")
            {
                LastError = ex.Message;
                Log("The fixed SAS token has expired; the connection is closed.");
                connected.TrySetException(ex);
                SetState(IoTHubConnectionState.Closed);
                return;
            }
            catch (Exception ex) when (!lifetime.IsCancellationRequested)
            {
                LastError = ex.Message;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            finally
            {
                connectLock.Release();
            }

            if (!await PauseAsync(backoff, $"Reconnect attempt failed ({LastError})").ConfigureAwait(false))
            {
                return;
            }
        }
    }

    /// <summary>Waits the backoff's next delay; false when the client was closed meanwhile.</summary>
    private async Task<bool> PauseAsync(Backoff backoff, string reason)
    {
        var delay = backoff.Next();
        Log($"{reason}; next attempt in {delay.TotalSeconds:0.0} s.");
        try
        {
            await Task.Delay(delay, lifetime.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private Task WaitConnectedAsync(CancellationToken cancellationToken)
    {
        // The common case, connected, costs no state machine on the per-message path.
        return connected.Task.IsCompletedSuccessfully && State == IoTHubConnectionState.Connected && Volatile.Read(ref disposed) == 0
            ? Task.CompletedTask
            : WaitConnectedSlowAsync(cancellationToken);
    }

    private async Task WaitConnectedSlowAsync(CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        if (State == IoTHubConnectionState.Closed)
        {
            throw Closed();
        }

        if (State == IoTHubConnectionState.Disconnected)
        {
            throw new IoTHubMqttException("NotConnected", IoTHubErrorKind.InvalidOperation,
                "The device is not connected.", "Call Connect-IoTHub (ConnectAsync) first.", DeviceId);
        }

        try
        {
            // While the client reconnects, work waits for it, but no longer than one operation may take.
            await connected.Task.WaitAsync(options.OperationTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new IoTHubMqttException("NotConnected", IoTHubErrorKind.ConnectionError,
                $"The device has been disconnected for more than {options.OperationTimeout.TotalSeconds:0} s{(LastError is null ? "" : $" ({LastError})")}; it keeps reconnecting.",
                "Check the network and the hub; the connection comes back by itself when the hub is reachable.", DeviceId);
        }
    }

    #endregion

    private Task OnMessageAsync(MqttApplicationMessageReceivedEventArgs e)
    {
        var topic = e.ApplicationMessage.Topic;
        var payload = System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload);
        if (topics.IsCloudToDevice(topic))
        {
            e.AutoAcknowledge = false;
            var message = new CloudToDeviceMessage(topic, payload, topics.CloudToDeviceProperties(topic), ct => e.AcknowledgeAsync(ct));
            cloudToDevice.Writer.TryWrite(message);
        }
        else if (DeviceTopics.TryParseTwinResponse(topic, out var status, out var rid, out var version))
        {
            if (pendingTwin.TryGetValue(rid, out var pending))
            {
                pending.TrySetResult(new TwinResponse(status, version, payload));
            }
        }
        else if (DeviceTopics.TryParseMethodRequest(topic, out var name, out var requestId))
        {
            var request = new MethodRequest(name, requestId, payload);
            if (registeredMethods.ContainsKey(name))
            {
                methodRequests.Writer.TryWrite(request);
            }
            else
            {
                var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["message"] = $"The device has no handler for method '{name}'." });
                _ = RespondQuietlyAsync(request, 501, body);
            }
        }
        else if (DeviceTopics.TryParseDesiredPatch(topic, out var desiredVersion))
        {
            try
            {
                if (JsonNode.Parse(payload) is JsonObject patch)
                {
                    var v = desiredVersion ?? patch["$version"]?.GetValue<long>() ?? 0;
                    desiredUpdates.Writer.TryWrite(new DesiredPropertiesUpdate(patch, v));
                }
            }
            catch (JsonException)
            {
                Log("Ignored a desired-properties patch that is not JSON.");
            }
        }
        else
        {
            Log($"Ignored a message on an unexpected topic ({topic.Length} characters).");
        }

        return Task.CompletedTask;
    }

    private async Task RespondQuietlyAsync(MethodRequest request, int status, byte[] body)
    {
        try
        {
            await RespondToMethodAsync(request, status, body, lifetime.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or IoTHubMqttException or ObjectDisposedException)
        {
            Log($"Could not answer method '{request.Name}': {ex.Message}");
        }
    }

    private static async Task<T?> ReadAsync<T>(ChannelReader<T> reader, TimeSpan? timeout, CancellationToken cancellationToken)
        where T : class
    {
        if (reader.TryRead(out var ready))
        {
            return ready;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout is { } t && t != Timeout.InfiniteTimeSpan)
        {
            linked.CancelAfter(t);
        }

        try
        {
            return await reader.ReadAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        catch (ChannelClosedException)
        {
            return reader.TryRead(out var item) ? item : null;
        }
    }

    private IoTHubMqttException MapConnectFailure(MqttClientConnectResultCode code, Exception? inner) => code switch
    {
        MqttClientConnectResultCode.BadUserNameOrPassword or MqttClientConnectResultCode.NotAuthorized when options.ClientCertificate is { } certificate =>
            new IoTHubMqttException("IoTHubUnauthorized", IoTHubErrorKind.Unauthorized,
                $"The hub refused the client certificate of '{topics.ClientId}' (thumbprint {certificate.Thumbprint}, {code}).",
                "Check that the device is registered for X.509 with this certificate's thumbprint (or CA), that it is enabled, and that the certificate is valid now.", DeviceId, inner),
        MqttClientConnectResultCode.BadUserNameOrPassword or MqttClientConnectResultCode.NotAuthorized =>
            new IoTHubMqttException("IoTHubUnauthorized", IoTHubErrorKind.Unauthorized,
                $"The hub refused the credentials of '{topics.ClientId}' ({code}).",
                "Check the device id and key, that the device is enabled, and the machine's clock (tokens allow about 5 minutes of skew).", DeviceId, inner),
        MqttClientConnectResultCode.ClientIdentifierNotValid =>
            new IoTHubMqttException("IoTHubClientIdRejected", IoTHubErrorKind.InvalidArgument,
                $"The hub rejected the client id '{topics.ClientId}'.", "Check the device id.", DeviceId, inner),
        MqttClientConnectResultCode.ServerUnavailable or MqttClientConnectResultCode.ServerBusy or MqttClientConnectResultCode.QuotaExceeded =>
            new IoTHubMqttException("IoTHubUnavailable", IoTHubErrorKind.Throttled,
                $"The hub is unavailable or throttling connections ({code}).", "Wait and retry; the client backs off by itself.", DeviceId, inner),
        _ => new IoTHubMqttException("IoTHubConnectRefused", IoTHubErrorKind.ConnectionError,
            $"The hub refused the connection ({code}).", null, DeviceId, inner),
    };

    private static IoTHubMqttException MapCommunicationFailure(string host, Exception ex)
    {
        for (Exception? inner = ex; inner is not null; inner = inner.InnerException)
        {
            if (inner is AuthenticationException)
            {
                return new IoTHubMqttException("TlsAuthenticationFailed", IoTHubErrorKind.Unauthorized,
                    $"The TLS handshake with {host} failed: {inner.Message}",
                    "Trust the server's CA (-CaCertificatePath for the emulator or a private gateway) and check the host name.", host, ex);
            }

            if (inner is System.Net.Sockets.SocketException socket)
            {
                return new IoTHubMqttException("ConnectionFailed", IoTHubErrorKind.ConnectionError,
                    $"Could not connect to {host}: {socket.Message}", "Check the host name, the port and the network.", host, ex);
            }
        }

        return new IoTHubMqttException("ConnectionFailed", IoTHubErrorKind.ConnectionError, $"The connection to {host} failed: {ex.Message}", null, host, ex);
    }

    // MQTTnet can throw a NullReferenceException from a publish that races with the connection being torn down (the
    // hub closing a throttled device's connection): that is a lost connection too, retried like one (bounded).
    private static bool IsTransient(Exception ex) =>
        ex is MqttCommunicationException or MqttClientNotConnectedException or MqttClientDisconnectedException or OperationCanceledException or ObjectDisposedException or TimeoutException
        || ex is NullReferenceException { Source: "MQTTnet" };

    private IoTHubMqttException Closed() =>
        new("ConnectionClosed", IoTHubErrorKind.InvalidOperation, $"The connection of '{topics.ClientId}' is closed.", "Connect again with Connect-IoTHub.", DeviceId);

    private void SetState(IoTHubConnectionState next)
    {
        var previous = (IoTHubConnectionState)Interlocked.Exchange(ref state, (int)next);
        if (previous != next)
        {
            StateChanged?.Invoke(next);
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);

    private void Log(string message) => options.Log?.Invoke($"[{topics.ClientId}] {message}");

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override string ToString() => $"{topics.ClientId}@{options.EffectiveConnectHost} ({State})";

    private sealed record TwinResponse(int Status, long? Version, byte[] Body);
}
