using System.Security.Authentication;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Diagnostics;
using IoTHubMqtt.Core.Errors;
using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// The connection of one device or module: connect and subscribe, renew the SAS token before it expires (MQTT cannot
/// change a password on a live connection, so renewing is reconnecting with a new token), and come back after a lost
/// connection with a jittered, capped backoff that grows while connections keep ending soon after they were made with
/// nothing acknowledged on them (a hub that refuses this device). A connection that ends soon but had messages
/// acknowledged (a hub that throttles this device: it acknowledges what it took, then closes the connection) is
/// followed by the backoff's first pause, not a longer one, so the device goes on at the hub's rate. The operations (telemetry, twin, methods, C2D) publish through <see cref="Mqtt"/>
/// once <see cref="WaitConnectedAsync"/> lets them, and learn of each new connection from <see cref="Connected"/>.
/// All times come from the options' <see cref="TimeProvider"/>.
/// </summary>
internal sealed class DeviceSession : IAsyncDisposable
{
    /// <summary>
    /// A connection that ends sooner than this (a throttling hub closing it) is followed by a pause before the next
    /// attempt, which grows while such connections have nothing acknowledged.
    /// </summary>
    private static readonly TimeSpan StableConnection = TimeSpan.FromSeconds(10);

    /// <summary>The socket's send and receive buffers: room for a coalesced write (see <see cref="CoalescingChannel"/>).</summary>
    private const int SocketBufferBytes = 512 * 1024;

    private readonly IoTHubDeviceClientOptions options;
    private readonly DeviceTopics topics;
    private readonly TimeProvider time;
    private readonly IoTHubSourceLogger log;
    private readonly TlsTrust trust;
    private readonly CoalescingClientAdapterFactory adapters = new();
    private readonly SemaphoreSlim connectLock = new(1, 1);
    private readonly CancellationTokenSource lifetime = new();
    private readonly MqttClientSubscribeOptions subscriptions;
    private readonly object reconnectGate = new();
    private bool reconnecting;
    private bool reconnectAgain;
    private TaskCompletionSource connected = NewSignal();
    private Task? reconnectTask;
    private ITimer? renewTimer;
    private Task renewal = Task.CompletedTask; // the renewal under way, awaited before the session's locks go
    private Backoff? reconnectBackoff;
    private bool lastConnectionShortLived;
    private int expectedDisconnect;
    private int state = (int)IoTHubConnectionState.Disconnected;
    private int disposed;
    private long disconnectedSince;

    public DeviceSession(IoTHubDeviceClientOptions options, DeviceTopics topics, MqttClientSubscribeOptions subscriptions, Func<MqttApplicationMessageReceivedEventArgs, Task> onMessage)
    {
        this.options = options;
        this.topics = topics;
        this.subscriptions = subscriptions;
        time = options.TimeProvider;
        log = options.Logger.WithSource("Session");
        trust = new TlsTrust(options.CaCertificatePath, options.UseSystemTrustStore);
        Mqtt = new MqttClientFactory().CreateMqttClient(adapters);
        Mqtt.ApplicationMessageReceivedAsync += onMessage;
        Mqtt.DisconnectedAsync += OnDisconnectedAsync;
    }

    /// <summary>The MQTT client the operations publish with.</summary>
    public IMqttClient Mqtt { get; }

    /// <summary>Cancelled when the session is closed for good.</summary>
    public CancellationToken Lifetime => lifetime.Token;

    public TimeProvider Time => time;

    public IoTHubConnectionState State => (IoTHubConnectionState)Volatile.Read(ref state);

    public bool IsClosed => State == IoTHubConnectionState.Closed || lifetime.IsCancellationRequested;

    public bool IsDisposed => Volatile.Read(ref disposed) != 0;

    /// <summary>The channel of the current connection (how many writes carried how many packets).</summary>
    public CoalescingChannel? Channel => adapters.Channel;

    public DateTimeOffset? TokenExpiresAt { get; private set; }

    public DateTimeOffset? ConnectedSince { get; private set; }

    public int ReconnectCount { get; private set; }

    public int TokenRenewalCount { get; private set; }

    public string? LastError { get; private set; }

    /// <summary>Since when the session has been without a connection (while it reconnects); null when connected.</summary>
    public DateTimeOffset? DisconnectedSince
    {
        get
        {
            var ticks = Interlocked.Read(ref disconnectedSince);
            return ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero);
        }
    }

    /// <summary>Raised on every state change; handlers must be quick and must not throw.</summary>
    public event Action<IoTHubConnectionState>? StateChanged;

    /// <summary>Raised each time a connection is made and subscribed (the first one and every reconnect).</summary>
    public event Action? Connected;

    /// <summary>
    /// Called before the token is renewed, with the connection still up and the state already Reconnecting: a chance
    /// to let acknowledgements that are due arrive, so a renewal sends nothing twice. Bounded by the operation timeout.
    /// </summary>
    public Func<CancellationToken, Task>? BeforeRenewal { get; set; }

    /// <summary>
    /// Called when a connection that ended soon after it was made is lost, before the pause that follows: how many
    /// messages the hub acknowledged on it, once each of its publishes has its outcome. Bounded by the operation timeout.
    /// </summary>
    public Func<CancellationToken, Task<int>>? AcknowledgedOnLostConnection { get; set; }

    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        await connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Mqtt.IsConnected)
            {
                return;
            }

            if (IsClosed)
            {
                throw Closed();
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
                catch (IoTHubMqttException ex) when (ex.IsTransient && attempt < 3 && !cancellationToken.IsCancellationRequested)
                {
                    // A transient failure (a connection dropped before the CONNACK, a hub that is busy or throttling
                    // connections) is worth another try; refused credentials, TLS failures and timeouts are not.
                    var delay = backoff.Next();
                    var pause = Task.Delay(delay, time, cancellationToken);
                    log.Warning($"Connect attempt {attempt} failed ({ex.Message}); next attempt in {delay.TotalSeconds:0.000} s.");
                    await pause.ConfigureAwait(false);
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

    /// <summary>Closes for good: no reconnect follows.</summary>
    public async Task DisconnectAsync(CancellationToken cancellationToken)
    {
        if (IsClosed)
        {
            return;
        }

        Interlocked.Exchange(ref expectedDisconnect, 1);
        await lifetime.CancelAsync().ConfigureAwait(false);
        renewTimer?.Dispose();
        try
        {
            if (Mqtt.IsConnected)
            {
                await Mqtt.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.NormalDisconnection).Build(), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or ObjectDisposedException)
        {
            log.Verbose($"Disconnect: {ex.Message}");
        }

        SetState(IoTHubConnectionState.Closed);
        Fail(connected, Closed());
        log.Info("Disconnected.");
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

        // A renewal that began before the close ends on the cancelled lifetime; it must not find its lock disposed.
        await Volatile.Read(ref renewal).ConfigureAwait(false);
        Mqtt.Dispose();
        lifetime.Dispose();
        connectLock.Dispose();
    }

    /// <summary>Completes at once when connected; while the session reconnects, waits up to the operation timeout.</summary>
    public Task WaitConnectedAsync(CancellationToken cancellationToken) =>
        connected.Task.IsCompletedSuccessfully && State == IoTHubConnectionState.Connected && !IsDisposed
            ? Task.CompletedTask
            : WaitConnectedSlowAsync(cancellationToken);

    /// <summary>
    /// Drops the current connection (the hub stopped answering while acknowledgements were due); the session then
    /// reconnects as after any lost connection.
    /// </summary>
    public void Abort(string reason)
    {
        if (IsClosed || !Mqtt.IsConnected)
        {
            return;
        }

        LastError = reason;
        log.Warning($"{reason}; reconnecting.");
        _ = AbortAsync();

        async Task AbortAsync()
        {
            try
            {
                await Mqtt.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), lifetime.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Whatever happens to the DISCONNECT, the connection is gone and the session reconnects.
                log.Verbose($"Dropping the connection: {ex.Message}");
            }
        }
    }

    public IoTHubMqttException Closed() => SessionFailures.Closed(topics.ClientId, options.DeviceId);

    private async Task WaitConnectedSlowAsync(CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        if (IsClosed)
        {
            throw Closed();
        }

        if (State == IoTHubConnectionState.Disconnected)
        {
            throw SessionFailures.NotConnected(options.DeviceId);
        }

        try
        {
            // While the session reconnects, work waits for it, but no longer than one operation may take.
            await connected.Task.WaitAsync(options.OperationTimeout, time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw SessionFailures.StillDisconnected(options.DeviceId, options.OperationTimeout, LastError);
        }
    }

    private async Task ConnectCoreAsync(CancellationToken cancellationToken)
    {
        string? password = null;
        var now = time.GetUtcNow();
        if (options.SharedAccessKey is not null)
        {
            TokenExpiresAt = now + options.TokenTimeToLive;
            password = SasToken.Create(options.ResourceUri, options.SharedAccessKey, TokenExpiresAt.Value, null, now);
        }
        else if (options.SharedAccessSignature is not null)
        {
            var info = SasToken.Parse(options.SharedAccessSignature);
            if (info.Expiry <= now)
            {
                throw SessionFailures.TokenExpired(info.Expiry, options.DeviceId);
            }

            TokenExpiresAt = info.Expiry;
            password = options.SharedAccessSignature;
        }

        var host = options.EffectiveConnectHost;
        using var timeout = new CancellationTokenSource(options.OperationTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.Token, timeout.Token);
        MqttClientConnectResult result;
        try
        {
            log.Info($"Connecting to {host}:{options.EffectivePort} ({options.Transport}) as {topics.ClientId}.");
            result = await Mqtt.ConnectAsync(BuildOptions(password ?? string.Empty), linked.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested && !lifetime.IsCancellationRequested)
        {
            // However MQTTnet reports it (cancelled, timed out, a closed channel), the operation ran out of time.
            throw SessionFailures.ConnectTimedOut(host, options.EffectivePort, options.OperationTimeout, ex);
        }
        catch (MqttConnectingFailedException ex)
        {
            // MQTTnet 5 returns a refused CONNACK as a result; this exception is a failure before the CONNACK.
            throw SessionFailures.Communication(host, ex);
        }
        catch (MqttCommunicationException ex)
        {
            throw SessionFailures.Communication(host, ex);
        }

        if (result.ResultCode != MqttClientConnectResultCode.Success)
        {
            throw SessionFailures.ConnectRefused(result.ResultCode, topics.ClientId, options.DeviceId, options.ClientCertificate?.Thumbprint);
        }

        try
        {
            await Mqtt.SubscribeAsync(subscriptions, linked.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested && !lifetime.IsCancellationRequested)
        {
            throw SessionFailures.ConnectTimedOut(host, options.EffectivePort, options.OperationTimeout, ex);
        }
        catch (MqttCommunicationException ex)
        {
            throw SessionFailures.Communication(host, ex);
        }

        if (log.IsEnabled(IoTHubLogLevel.Verbose))
        {
            log.Verbose($"Subscribed to {string.Join(", ", subscriptions.TopicFilters.Select(f => f.Topic))}.");
        }

        ConnectedSince = time.GetUtcNow();
        LastError = null;
        Interlocked.Exchange(ref disconnectedSince, 0);
        Interlocked.Exchange(ref expectedDisconnect, 0);
        ScheduleRenewal();
        SetState(IoTHubConnectionState.Connected);
        connected.TrySetResult();
        log.Info($"Connected; session present: {result.IsSessionPresent}.");
        Connected?.Invoke();
    }

    private MqttClientOptions BuildOptions(string password)
    {
        var builder = new MqttClientOptionsBuilder()
            .WithProtocolVersion(MqttProtocolVersion.V311)
            .WithClientId(topics.ClientId)
            .WithCleanSession(options.CleanSession)
            .WithKeepAlivePeriod(options.KeepAlive)
            .WithTimeout(options.OperationTimeout)
            .WithCredentials(topics.UserName(options.HostName, options.ModelId, options.ProductInfo), password);
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

        var built = builder.Build();
        if (built.ChannelOptions is MqttClientTcpOptions tcp)
        {
            // MQTTnet sizes the socket buffers to 8 KB, which also switches off the kernel's own sizing: a coalesced
            // write of several messages then crawls through the socket a few segments per acknowledgement.
            tcp.BufferSize = SocketBufferBytes;
        }

        return built;
    }

    private void ScheduleRenewal()
    {
        renewTimer?.Dispose();
        if (options.SharedAccessKey is null || TokenExpiresAt is null)
        {
            return;
        }

        var due = TimeSpan.FromTicks((long)(options.TokenTimeToLive.Ticks * options.TokenRenewalFraction));
        renewTimer = time.CreateTimer(_ => Volatile.Write(ref renewal, RenewTokenAsync()), null, due, Timeout.InfiniteTimeSpan);
    }

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
            if (!Mqtt.IsConnected)
            {
                return; // the reconnect loop connects with a fresh token
            }

            connected = NewSignal();
            SetState(IoTHubConnectionState.Reconnecting);
            log.Info("Renewing the SAS token.");
            if (BeforeRenewal is { } beforeRenewal)
            {
                using var settle = new CancellationTokenSource(options.OperationTimeout, time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(settle.Token, lifetime.Token);
                try
                {
                    await beforeRenewal(linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!lifetime.IsCancellationRequested)
                {
                    log.Verbose("Renewing without waiting longer for acknowledgements.");
                }
            }

            Interlocked.Exchange(ref expectedDisconnect, 1);
            try
            {
                await Mqtt.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), lifetime.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException)
            {
                log.Verbose($"Disconnect before renewal: {ex.Message}");
            }

            TokenRenewalCount++;
            Interlocked.Exchange(ref disconnectedSince, time.GetUtcNow().UtcTicks);
            try
            {
                await ConnectCoreAsync(lifetime.Token).ConfigureAwait(false);
                ReconnectCount++;
            }
            catch (Exception ex) when (!lifetime.IsCancellationRequested)
            {
                LastError = ex.Message;
                log.Warning($"Reconnect after renewal failed: {ex.Message}");
                StartReconnectLoop();
            }
        }
        catch (Exception) when (lifetime.IsCancellationRequested)
        {
            // Closed while renewing.
        }
        finally
        {
            ReleaseConnectLock();
        }
    }

    // A renewal's timer can fire as the session is disposed: its release must not fail on a disposed lock.
    private void ReleaseConnectLock()
    {
        try
        {
            connectLock.Release();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private Task OnDisconnectedAsync(MqttClientDisconnectedEventArgs e)
    {
        if (!e.ClientWasConnected || Volatile.Read(ref expectedDisconnect) != 0 || lifetime.IsCancellationRequested)
        {
            return Task.CompletedTask;
        }

        var now = time.GetUtcNow();
        LastError ??= e.Exception?.Message ?? e.Reason.ToString();
        lastConnectionShortLived = ConnectedSince is { } since && now - since < StableConnection;
        Interlocked.Exchange(ref disconnectedSince, now.UtcTicks);
        log.Warning($"Connection lost ({e.Reason}); reconnecting.");
        StartReconnectLoop();
        return Task.CompletedTask;
    }

    private void StartReconnectLoop()
    {
        lock (reconnectGate)
        {
            if (lifetime.IsCancellationRequested)
            {
                return;
            }

            if (reconnecting)
            {
                // The loop is finishing a connection that has just been lost again: it goes round once more.
                reconnectAgain = true;
                return;
            }

            reconnecting = true;
            BeginReconnectingLocked();
            reconnectTask = Task.Run(ReconnectAsync);
        }
    }

    private void BeginReconnectingLocked()
    {
        if (connected.Task.IsCompleted)
        {
            connected = NewSignal();
        }

        if (Interlocked.Read(ref disconnectedSince) == 0)
        {
            Interlocked.Exchange(ref disconnectedSince, time.GetUtcNow().UtcTicks);
        }

        SetState(IoTHubConnectionState.Reconnecting);
    }

    private async Task ReconnectAsync()
    {
        while (true)
        {
            await ReconnectLoopAsync().ConfigureAwait(false);
            lock (reconnectGate)
            {
                if (!reconnectAgain || lifetime.IsCancellationRequested)
                {
                    reconnecting = false;
                    reconnectAgain = false;
                    return;
                }

                reconnectAgain = false;
                BeginReconnectingLocked();
            }
        }
    }

    private async Task ReconnectLoopAsync()
    {
        // A connection that ended soon after it was made is followed by a pause before the first attempt. The backoff
        // carries over from one such connection to the next while nothing is acknowledged on them (a hub that refuses
        // this device); one on which the hub acknowledged messages (a hub that throttles this device closes the
        // connection once it has acknowledged what it took) made progress: the pause starts again from its first step,
        // long enough for the hub's rate to allow more, short enough to go on at that rate.
        var backoff = reconnectBackoff ??= new Backoff(options.ReconnectInitialDelay, options.ReconnectMaxDelay);
        if (!lastConnectionShortLived)
        {
            backoff.Reset();
        }
        else
        {
            var acknowledged = await AcknowledgedOnLostConnectionAsync().ConfigureAwait(false);
            if (acknowledged > 0)
            {
                backoff.Reset();
            }

            var reason = acknowledged > 0
                ? $"The connection ended soon after it was made, with {acknowledged} message(s) acknowledged (the hub may be throttling this device)"
                : "The connection ended soon after it was made";
            if (!await PauseAsync(backoff, reason).ConfigureAwait(false))
            {
                return;
            }
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
                if (Mqtt.IsConnected)
                {
                    return;
                }

                await ConnectCoreAsync(lifetime.Token).ConfigureAwait(false);
                ReconnectCount++;
                return;
            }
            catch (IoTHubMqttException ex) when (ex.ErrorId == ErrorIds.SasTokenExpired)
            {
                LastError = ex.Message;
                log.Error("The fixed SAS token has expired; the connection is closed.");
                Fail(connected, ex);
                SetState(IoTHubConnectionState.Closed);
                return;
            }
            catch (Exception ex) when (!lifetime.IsCancellationRequested)
            {
                LastError = ex.Message;
            }
            catch (Exception)
            {
                return; // closed meanwhile
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

    /// <summary>How many messages were acknowledged on the connection just lost (0 when unknown within the operation timeout).</summary>
    private async Task<int> AcknowledgedOnLostConnectionAsync()
    {
        if (AcknowledgedOnLostConnection is not { } count)
        {
            return 0;
        }

        using var settle = new CancellationTokenSource(options.OperationTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(settle.Token, lifetime.Token);
        try
        {
            return await count(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
    }

    /// <summary>Waits the backoff's next delay; false when the session was closed meanwhile.</summary>
    private async Task<bool> PauseAsync(Backoff backoff, string reason)
    {
        var delay = backoff.Next();
        try
        {
            // The timer starts before the line is logged: whoever reads the line (a test driving a fake clock) may
            // move time on at once.
            var pause = Task.Delay(delay, time, lifetime.Token);
            log.Warning($"{reason}; next attempt in {delay.TotalSeconds:0.000} s.");
            await pause.ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private void SetState(IoTHubConnectionState next)
    {
        var previous = (IoTHubConnectionState)Interlocked.Exchange(ref state, (int)next);
        if (previous != next)
        {
            StateChanged?.Invoke(next);
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, typeof(IoTHubDeviceClient));

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Fails a signal that may have no waiter, marking its exception observed (nobody has to read it).</summary>
    private static void Fail(TaskCompletionSource signal, Exception error)
    {
        if (signal.TrySetException(error))
        {
            _ = signal.Task.Exception;
        }
    }
}
