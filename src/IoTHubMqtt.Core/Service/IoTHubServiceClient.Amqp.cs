using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Amqp;
using Amqp.Framing;
using Amqp.Types;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;

namespace IoTHubMqtt.Core.Service;

/// <summary>
/// The hub's AMQP service surface (the same for a hub in Azure and for the emulator): C2D send on
/// <c>/messages/devicebound</c>, delivery feedback from <c>/messages/servicebound/feedback</c>, and telemetry from the
/// Event Hub-compatible endpoint the hub's <c>messages/events</c> node redirects to.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-amqp-support
/// </summary>
public sealed partial class IoTHubServiceClient
{
    private static readonly TimeSpan AttachTimeout = TimeSpan.FromSeconds(30);
    private readonly SemaphoreSlim amqpGate = new(1, 1);
    private AmqpServiceConnection? cloudConnection;
    private SenderLink? cloudSender;
    private int? amqpPort;

    /// <summary>
    /// The AMQP port: <see cref="IoTHubServiceOptions.AmqpPort"/>, 5671 for a hub in Azure, else what the emulator's
    /// <c>GET /$emulator/endpoints</c> names (5671 when the host has no such resource).
    /// </summary>
    public async Task<int> GetAmqpPortAsync(CancellationToken cancellationToken = default)
    {
        if (options.AmqpPort is { } configured)
        {
            return configured;
        }

        if (amqpPort is { } known)
        {
            return known;
        }

        var port = 5671;
        if (!AzureHubSuffixes.Any(s => HostName.EndsWith(s, StringComparison.OrdinalIgnoreCase)))
        {
            try
            {
                var response = await SendAsync(HttpMethod.Get, "$emulator/endpoints", null, null, "Find the AMQP port", null, cancellationToken).ConfigureAwait(false);
                port = ObjectOf(response)["amqpPort"] is JsonValue value && value.TryGetValue<int>(out var p) ? p : 5671;
                if (port == 0)
                {
                    throw new IoTHubMqttException("AmqpNotAvailable", IoTHubErrorKind.NotImplemented,
                        $"The emulator {HostName} runs without its AMQP endpoint, which C2D messages, feedback and telemetry need.",
                        "Start the emulator without -AmqpPort -1.", HostName);
                }
            }
            catch (IoTHubMqttException ex) when (ex.ErrorId == "IoTHubResourceNotFound")
            {
                // Not the emulator: the hub's standard port.
            }
        }

        amqpPort = port;
        return port;
    }

    #region Cloud-to-device

    /// <summary>
    /// Sends a cloud-to-device message over AMQP (one connection and sender link, kept for the next calls). The hub
    /// answers with the outcome: an unknown device is DeviceNotFound, a full queue CloudMessageQueueFull.
    /// </summary>
    public async Task<CloudMessageReceipt> SendCloudToDeviceAsync(string deviceId, CloudMessage message, CancellationToken cancellationToken = default)
    {
        IdentityValidator.ThrowIfInvalidDeviceId(deviceId);
        ArgumentNullException.ThrowIfNull(message);
        foreach (var name in message.Properties.Keys)
        {
            if (string.IsNullOrEmpty(name) || name.Any(c => c > 126 || c <= 32 || c is ':' or '(' or ')' or ',' or '/' or '"' or '[' or ']' or '?' or '=' or '{' or '}' or '\\' or ';' or '@'))
            {
                throw new IoTHubMqttException("InvalidPropertyName", IoTHubErrorKind.InvalidArgument,
                    $"The property name '{name}' cannot be sent: use ASCII letters, digits and - _ . characters.", null, name);
            }
        }

        const string operation = "Send cloud-to-device message";
        var messageId = string.IsNullOrEmpty(message.MessageId) ? Guid.NewGuid().ToString() : message.MessageId;
        for (var attempt = 0; ; attempt++)
        {
            var sender = await GetCloudSenderAsync(operation, cancellationToken).ConfigureAwait(false);
            try
            {
                await sender.SendAsync(ToAmqp(deviceId, messageId, message)).WaitAsync(options.RequestTimeout, cancellationToken).ConfigureAwait(false);
                return new CloudMessageReceipt(deviceId, messageId);
            }
            catch (Exception ex) when (ex is AmqpException or ObjectDisposedException && (sender.IsClosed || cloudConnection?.IsClosed != false) && attempt < options.MaxRetries)
            {
                // The link or the connection went away (idle, token, network): open them again and resend.
                Interlocked.Increment(ref retries);
                options.Log?.Invoke($"{operation}: the AMQP link closed ({ex.Message}); reconnecting.");
                await ResetCloudSenderAsync(sender).ConfigureAwait(false);
            }
            catch (AmqpException ex)
            {
                throw AmqpErrors.From(ex.Error, operation, deviceId, ex);
            }
            catch (TimeoutException ex)
            {
                throw new IoTHubMqttException("IoTHubRequestTimedOut", IoTHubErrorKind.Timeout,
                    $"{operation}: {HostName} did not settle the message within {options.RequestTimeout.TotalSeconds:0} s.", null, deviceId, ex);
            }
        }
    }

    private static Message ToAmqp(string deviceId, string messageId, CloudMessage message)
    {
        var amqp = new Message
        {
            BodySection = new Data { Binary = message.Body },
            Properties = new Properties
            {
                MessageId = messageId,
                To = $"/devices/{Uri.EscapeDataString(deviceId)}/messages/devicebound",
            },
            ApplicationProperties = new ApplicationProperties(),
        };
        if (message.CorrelationId is { Length: > 0 } correlationId)
        {
            amqp.Properties.CorrelationId = correlationId;
        }

        if (message.ContentType is { Length: > 0 } contentType)
        {
            amqp.Properties.ContentType = contentType;
        }

        if (message.ContentEncoding is { Length: > 0 } contentEncoding)
        {
            amqp.Properties.ContentEncoding = contentEncoding;
        }

        if (message.Expiry is { } expiry)
        {
            amqp.Properties.AbsoluteExpiryTime = expiry.UtcDateTime;
        }

        foreach (var (name, value) in message.Properties)
        {
            amqp.ApplicationProperties[name] = value;
        }

        if (message.Ack is { Length: > 0 } ack)
        {
            amqp.ApplicationProperties["iothub-ack"] = ack;
        }

        return amqp;
    }

    private async Task<SenderLink> GetCloudSenderAsync(string operation, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        await amqpGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (cloudSender is { IsClosed: false } open && cloudConnection is { IsClosed: false })
            {
                return open;
            }

            if (cloudConnection is not null)
            {
                await cloudConnection.DisposeAsync().ConfigureAwait(false);
                cloudConnection = null;
            }

            var connection = await OpenHubAmqpAsync(operation, cancellationToken).ConfigureAwait(false);
            var (link, refused) = await AttachAsync(on => new SenderLink(connection.Session, "c2d-" + Guid.NewGuid().ToString("N")[..12],
                new Target { Address = "/messages/devicebound" }, on), cancellationToken).ConfigureAwait(false);
            if (refused is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                throw AmqpErrors.From(refused, operation, HostName);
            }

            cloudConnection = connection;
            cloudSender = link;
            return link;
        }
        finally
        {
            amqpGate.Release();
        }
    }

    private async Task ResetCloudSenderAsync(SenderLink failed)
    {
        await amqpGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (ReferenceEquals(cloudSender, failed) && cloudConnection is not null)
            {
                await cloudConnection.DisposeAsync().ConfigureAwait(false);
                cloudConnection = null;
                cloudSender = null;
            }
        }
        finally
        {
            amqpGate.Release();
        }
    }

    /// <summary>Opens a reader of the hub's C2D delivery feedback queue (<c>/messages/servicebound/feedback</c>).</summary>
    public async Task<CloudMessageFeedbackReader> OpenCloudMessageFeedbackReaderAsync(CancellationToken cancellationToken = default)
    {
        const string operation = "Read cloud-to-device feedback";
        var connection = await OpenHubAmqpAsync(operation, cancellationToken).ConfigureAwait(false);
        try
        {
            var (link, refused) = await AttachAsync(on => new ReceiverLink(connection.Session, "feedback-" + Guid.NewGuid().ToString("N")[..12],
                new Source { Address = "/messages/serviceBound/feedback" }, on), cancellationToken).ConfigureAwait(false);
            if (refused is not null)
            {
                throw AmqpErrors.From(refused, operation, HostName);
            }

            return new CloudMessageFeedbackReader(connection, link, HostName);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    #endregion

    #region Telemetry

    /// <summary>
    /// Opens a reader of device-to-cloud messages from every partition of the hub's Event Hub-compatible endpoint: the
    /// hub's <c>messages/events</c> link is redirected (<c>amqp:link:redirect</c>, with <c>hostname</c>, <c>port</c> and
    /// <c>address</c>) to the Event Hubs namespace, which takes the same policy key; <c>$management</c> names the partitions.
    /// A dropped connection is opened again (the same redirect and token, with backoff, up to
    /// <see cref="IoTHubServiceOptions.MaxRetries"/> attempts) and each partition resumes after the last message it delivered.
    /// </summary>
    public async Task<TelemetryReader> OpenTelemetryReaderAsync(TelemetryReadOptions? read = null, CancellationToken cancellationToken = default)
    {
        read ??= new TelemetryReadOptions();
        var group = string.IsNullOrEmpty(read.ConsumerGroup) ? "$Default" : read.ConsumerGroup;
        var start = read.EnqueuedAfter is { } after
            ? string.Create(CultureInfo.InvariantCulture, $"amqp.annotation.x-opt-enqueued-time > '{after.ToUnixTimeMilliseconds()}'")
            : "amqp.annotation.x-opt-offset > '-1'";
        var reader = new TelemetryReader(read.DeviceId, start, (r, ct) => ConnectTelemetryAsync(group, r, ct),
            new Backoff(options.RetryInitialDelay, options.RetryMaxDelay), options.MaxRetries, options.Log);
        try
        {
            await reader.ConnectAsync(cancellationToken).ConfigureAwait(false);
            return reader;
        }
        catch
        {
            await reader.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Follows the hub's redirect, authorizes on the Event Hubs namespace and attaches a link to every partition.</summary>
    private async Task<TelemetryConnection> ConnectTelemetryAsync(string group, TelemetryReader reader, CancellationToken cancellationToken)
    {
        const string operation = "Read telemetry";
        string eventHubHost;
        int eventHubPort;
        string entity;
        await using (var hub = await OpenHubAmqpAsync(operation, cancellationToken).ConfigureAwait(false))
        {
            var (link, refused) = await AttachAsync(on => new ReceiverLink(hub.Session, "events-" + Guid.NewGuid().ToString("N")[..12],
                new Source { Address = $"/messages/events/ConsumerGroups/{group}/Partitions/0" }, on), cancellationToken).ConfigureAwait(false);
            if (refused is null)
            {
                await AmqpServiceConnection.CloseQuietlyAsync(link).ConfigureAwait(false);
                throw new IoTHubMqttException("TelemetryRedirectMissing", IoTHubErrorKind.ProtocolError,
                    $"{operation}: {HostName} opened its events link instead of redirecting to its Event Hub-compatible endpoint.",
                    "Read the hub's built-in endpoint with an Event Hubs client and its Event Hub-compatible connection string.", HostName);
            }

            if (refused.Condition.ToString() != ErrorCode.LinkRedirect)
            {
                throw AmqpErrors.From(refused, operation, HostName);
            }

            (eventHubHost, eventHubPort, entity) = ParseRedirect(refused, operation);
        }

        var resource = $"sb://{eventHubHost}/{entity}";
        options.Log?.Invoke($"{operation}: {HostName} redirected to {eventHubHost}:{eventHubPort.ToString(CultureInfo.InvariantCulture)}/{entity}.");
        var eventHub = await AmqpServiceConnection.OpenAsync(eventHubHost, eventHubPort, tlsTrust, resource, now => Sign(resource, now), operation, options.Log, cancellationToken).ConfigureAwait(false);
        var links = new List<(string Partition, ReceiverLink Link)>();
        try
        {
            var partitions = await ReadPartitionIdsAsync(eventHub, entity, resource, operation, cancellationToken).ConfigureAwait(false);
            foreach (var partition in partitions)
            {
                var filter = reader.FilterFor(partition);
                var source = new Source
                {
                    Address = $"{entity}/ConsumerGroups/{group}/Partitions/{partition}",
                    FilterSet = new Map { [new Symbol("apache.org:selector-filter:string")] = new DescribedValue(new Symbol("apache.org:selector-filter:string"), filter) },
                };
                var (link, refused) = await AttachAsync(on => new ReceiverLink(eventHub.Session, $"events-{partition}-{Guid.NewGuid().ToString("N")[..8]}", source, on), cancellationToken).ConfigureAwait(false);
                links.Add((partition, link));
                if (refused is not null)
                {
                    throw AmqpErrors.From(refused, operation, $"{entity}/ConsumerGroups/{group}/Partitions/{partition}");
                }
            }

            return new TelemetryConnection(eventHub, eventHubHost, entity, links);
        }
        catch
        {
            foreach (var (_, link) in links)
            {
                await AmqpServiceConnection.CloseQuietlyAsync(link).ConfigureAwait(false);
            }

            await eventHub.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    internal static (string Host, int Port, string Entity) ParseRedirect(Error redirect, string operation)
    {
        var info = redirect.Info;
        var address = info?[new Symbol("address")] as string;
        if (address is null || !Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Segments.Length < 2)
        {
            throw new IoTHubMqttException("TelemetryRedirectInvalid", IoTHubErrorKind.ProtocolError,
                $"{operation}: the hub redirected to '{address}', which is not an AMQP address of an Event Hub.", null, address);
        }

        var host = info?[new Symbol("hostname")] as string ?? uri.Host;
        var port = info?[new Symbol("port")] is { } p ? Convert.ToInt32(p, CultureInfo.InvariantCulture) : uri.Port > 0 ? uri.Port : 5671;
        var entity = Uri.UnescapeDataString(uri.Segments[1].TrimEnd('/'));
        return (host, port, entity);
    }

    private async Task<IReadOnlyList<string>> ReadPartitionIdsAsync(AmqpServiceConnection eventHub, string entity, string resource, string operation, CancellationToken cancellationToken)
    {
        var request = new Message { ApplicationProperties = new ApplicationProperties() };
        request.ApplicationProperties["operation"] = "READ";
        request.ApplicationProperties["name"] = entity;
        request.ApplicationProperties["type"] = "com.microsoft:eventhub";
        request.ApplicationProperties["security_token"] = Sign(resource, DateTimeOffset.UtcNow).Token;
        var response = await eventHub.RequestAsync("$management", request, operation, cancellationToken).ConfigureAwait(false);
        var status = Convert.ToInt32(response.ApplicationProperties?["status-code"] ?? 0, CultureInfo.InvariantCulture);
        var ids = status == 200 && response.Body is Map map && map["partition_ids"] is IEnumerable list and not string
            ? list.Cast<object>().Select(o => Convert.ToString(o, CultureInfo.InvariantCulture) ?? "").Where(s => s.Length > 0).ToList()
            : [];
        if (ids.Count == 0)
        {
            throw new IoTHubMqttException(status == 401 ? "IoTHubUnauthorized" : "IoTHubRequestFailed", status == 401 ? IoTHubErrorKind.Unauthorized : IoTHubErrorKind.ProtocolError,
                $"{operation}: the Event Hub-compatible endpoint did not name its partitions ({status} {response.ApplicationProperties?["status-description"]}).", null, entity);
        }

        return ids;
    }

    #endregion

    #region AMQP plumbing

    private async Task<AmqpServiceConnection> OpenHubAmqpAsync(string operation, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var port = await GetAmqpPortAsync(cancellationToken).ConfigureAwait(false);
        return await AmqpServiceConnection.OpenAsync(HostName, port, tlsTrust, HostName, now => Sign(HostName, now), operation, options.Log, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A policy token for <paramref name="resource"/>: the connection string's own token, or one signed now.</summary>
    private (string Token, DateTimeOffset Expiry) Sign(string resource, DateTimeOffset now)
    {
        if (policy.SharedAccessSignature is { } fixedToken)
        {
            return (fixedToken, SasToken.Parse(fixedToken).Expiry);
        }

        var expiry = now + options.TokenTimeToLive;
        return (SasToken.Create(resource, policy.SharedAccessKey!, expiry, policy.SharedAccessKeyName, now), expiry);
    }

    /// <summary>Attaches a link and waits for the peer's answer: the link, or the error it refused (or redirected) with.</summary>
    private static async Task<(T Link, Error? Refused)> AttachAsync<T>(Func<OnAttached, T> create, CancellationToken cancellationToken)
        where T : Link
    {
        var attached = new TaskCompletionSource<Attach>(TaskCreationOptions.RunContinuationsAsynchronously);
        var closed = new TaskCompletionSource<Error?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var link = create((_, attach) => attached.TrySetResult(attach));
        link.Closed += (_, error) => closed.TrySetResult(error);
        if (link.IsClosed)
        {
            // The refusal can arrive before the handler above was added: the event has gone by then.
            closed.TrySetResult(link.Error);
        }

        var first = await Task.WhenAny(attached.Task, closed.Task).WaitAsync(AttachTimeout, cancellationToken).ConfigureAwait(false);
        if (first == attached.Task)
        {
            var attach = attached.Task.Result;
            var refused = link is ReceiverLink ? attach.Source is null : attach.Target is null;
            if (!refused)
            {
                return (link, null);
            }

            // A refusal is an attach without a terminus followed by a detach that carries the error.
            var error = await closed.Task.WaitAsync(AttachTimeout, cancellationToken).ConfigureAwait(false);
            return (link, error ?? new Error(ErrorCode.NotFound) { Description = "The peer refused the link." });
        }

        return (link, closed.Task.Result ?? new Error(ErrorCode.DetachForced) { Description = "The link closed before it was attached." });
    }

    private void DisposeAmqp()
    {
        var connection = cloudConnection;
        cloudConnection = null;
        cloudSender = null;
        if (connection is not null)
        {
            _ = connection.DisposeAsync().AsTask();
        }
    }

    internal static TelemetryEvent ToTelemetryEvent(Message message, string partition)
    {
        var annotations = message.MessageAnnotations;
        object? Annotation(string name) => annotations?[new Symbol(name)];
        var system = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string name, object? value)
        {
            if (value is not null)
            {
                system[name] = value is DateTime time ? time.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture)
                    : value is byte[] bytes ? Encoding.UTF8.GetString(bytes)
                    : Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
            }
        }

        var p = message.Properties;
        if (p is not null)
        {
            Add("message-id", p.MessageId);
            Add("correlation-id", p.CorrelationId);
            Add("user-id", p.UserId);
            Add("content-type", p.ContentType);
            Add("content-encoding", p.ContentEncoding);
            Add("to", p.To);
            if (p.AbsoluteExpiryTime > DateTime.MinValue.AddYears(1))
            {
                Add("absolute-expiry-time", p.AbsoluteExpiryTime);
            }
        }

        if (annotations is not null)
        {
            foreach (var (key, value) in annotations.Map)
            {
                Add(key.ToString() ?? "", value);
            }
        }

        var properties = new Dictionary<string, string>(StringComparer.Ordinal);
        if (message.ApplicationProperties is not null)
        {
            foreach (var (key, value) in message.ApplicationProperties.Map)
            {
                properties[key.ToString() ?? ""] = value is DateTime t ? t.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture) : Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
            }
        }

        var body = message.BodySection switch
        {
            Data data => data.Binary ?? [],
            AmqpValue { Value: byte[] bytes } => bytes,
            AmqpValue { Value: string text } => Encoding.UTF8.GetBytes(text),
            AmqpValue { Value: { } other } => Encoding.UTF8.GetBytes(Convert.ToString(other, CultureInfo.InvariantCulture) ?? ""),
            _ => [],
        };
        var sequence = Annotation("x-opt-sequence-number") is { } s ? Convert.ToInt64(s, CultureInfo.InvariantCulture) : 0;
        var enqueued = Annotation("x-opt-enqueued-time") is DateTime e ? new DateTimeOffset(DateTime.SpecifyKind(e.ToUniversalTime(), DateTimeKind.Utc)) : DateTimeOffset.UtcNow;
        var deviceId = Annotation("iothub-connection-device-id") as string ?? properties.GetValueOrDefault("iothub-connection-device-id") ?? "";
        return new TelemetryEvent(sequence, deviceId, enqueued, body, properties, system) { PartitionId = partition };
    }

    #endregion
}

/// <summary>One connection of a <see cref="TelemetryReader"/> to the Event Hub-compatible endpoint, with a link per partition.</summary>
internal sealed record TelemetryConnection(AmqpServiceConnection Connection, string Host, string EventHubName, IReadOnlyList<(string Partition, ReceiverLink Link)> Links);

/// <summary>
/// Telemetry from every partition of the Event Hub-compatible endpoint, as it arrives. When the connection drops, the
/// reader connects again in the background (backoff with jitter, a bounded number of attempts) and each partition
/// resumes after the last offset it delivered, so that no message is lost or read twice; only when every attempt failed
/// does <see cref="ReadAsync"/> end with IoTHubConnectionFailed.
/// </summary>
public sealed class TelemetryReader : IAsyncDisposable
{
    private const string Operation = "Read telemetry";
    private readonly Channel<TelemetryEvent> events = Channel.CreateUnbounded<TelemetryEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, (string Offset, long? Number)> lastOffsets = new(StringComparer.Ordinal);
    private readonly object gate = new();
    private readonly CancellationTokenSource disposed = new();
    private readonly string? deviceId;
    private readonly string startFilter;
    private readonly Func<TelemetryReader, CancellationToken, Task<TelemetryConnection>> connect;
    private readonly Backoff backoff;
    private readonly int maxAttempts;
    private readonly Action<string>? log;
    private TelemetryConnection? current;
    private Task? reconnecting;
    private int generation;
    private int reconnects;

    internal TelemetryReader(string? deviceId, string startFilter, Func<TelemetryReader, CancellationToken, Task<TelemetryConnection>> connect,
        Backoff backoff, int maxAttempts, Action<string>? log)
    {
        this.deviceId = deviceId;
        this.startFilter = startFilter;
        this.connect = connect;
        this.backoff = backoff;
        this.maxAttempts = Math.Max(0, maxAttempts);
        this.log = log;
    }

    /// <summary>The Event Hubs namespace host the hub redirected to.</summary>
    public string EventHubHost { get; private set; } = "";

    /// <summary>The Event Hub-compatible name.</summary>
    public string EventHubName { get; private set; } = "";

    public IReadOnlyList<string> PartitionIds { get; private set; } = [];

    /// <summary>How many times the reader connected again after its connection dropped.</summary>
    public int Reconnects => Volatile.Read(ref reconnects);

    /// <summary>The start filter of a partition: after the last offset it delivered, else the reader's start position.</summary>
    internal string FilterFor(string partition)
    {
        lock (gate)
        {
            return lastOffsets.TryGetValue(partition, out var last)
                ? $"amqp.annotation.x-opt-offset > '{last.Offset}'"
                : startFilter;
        }
    }

    internal async Task ConnectAsync(CancellationToken cancellationToken)
    {
        var connection = await connect(this, cancellationToken).ConfigureAwait(false);
        Start(connection);
    }

    private void Start(TelemetryConnection connection)
    {
        int mine;
        lock (gate)
        {
            if (disposed.IsCancellationRequested)
            {
                _ = connection.Connection.DisposeAsync().AsTask();
                return;
            }

            current = connection;
            mine = ++generation;
            EventHubHost = connection.Host;
            EventHubName = connection.EventHubName;
            PartitionIds = connection.Links.Select(l => l.Partition).ToList();
        }

        connection.Connection.Connection.Closed += (_, error) => OnClosed(mine, error, null);
        foreach (var (partition, link) in connection.Links)
        {
            link.Closed += (_, error) => OnClosed(mine, error, partition);
            link.Start(200, (receiver, message) =>
            {
                try
                {
                    Deliver(mine, partition, message);
                }
                finally
                {
                    receiver.Accept(message);
                }
            });
        }

        // The connection may have dropped before the handlers were in place.
        if (connection.Connection.IsClosed)
        {
            OnClosed(mine, connection.Connection.Connection.Error, null);
        }
    }

    private void Deliver(int mine, string partition, Message message)
    {
        var e = IoTHubServiceClient.ToTelemetryEvent(message, partition);
        lock (gate)
        {
            if (mine != generation)
            {
                return; // a late delivery of a dropped connection: the new one delivers it again
            }

            var offset = e.SystemProperties.GetValueOrDefault("x-opt-offset");
            if (offset is not null)
            {
                long? number = long.TryParse(offset, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? n : null;
                if (number is { } next && lastOffsets.TryGetValue(partition, out var last) && last.Number is { } previous && next <= previous)
                {
                    return; // already delivered
                }

                lastOffsets[partition] = (offset, number);
            }

            if (deviceId is null || e.DeviceId == deviceId)
            {
                events.Writer.TryWrite(e);
            }
        }
    }

    private void OnClosed(int mine, Error? error, string? partition)
    {
        TelemetryConnection? dropped;
        lock (gate)
        {
            if (disposed.IsCancellationRequested || mine != generation || reconnecting is not null)
            {
                return;
            }

            var failure = AmqpErrors.From(error, Operation, partition is null ? EventHubHost : $"{EventHubName}/Partitions/{partition}");
            if (failure.ErrorId != "IoTHubConnectionFailed" || maxAttempts == 0)
            {
                events.Writer.TryComplete(failure);
                return;
            }

            dropped = current;
            current = null;
            generation++;
            log?.Invoke($"{Operation}: the AMQP {(partition is null ? "connection" : $"link of partition {partition}")} closed ({error?.Condition.ToString() ?? "no error"}); reconnecting.");
            reconnecting = Task.Run(() => ReconnectAsync(dropped));
        }
    }

    private async Task ReconnectAsync(TelemetryConnection? dropped)
    {
        if (dropped is not null)
        {
            await CloseAsync(dropped).ConfigureAwait(false);
        }

        backoff.Reset();
        Exception? last = null;
        for (var attempt = 1; attempt <= maxAttempts; attempt++)
        {
            try
            {
                await Task.Delay(backoff.Next(), disposed.Token).ConfigureAwait(false);
                var connection = await connect(this, disposed.Token).ConfigureAwait(false);
                lock (gate)
                {
                    reconnecting = null;
                }

                Interlocked.Increment(ref reconnects);
                log?.Invoke($"{Operation}: connected again to {connection.Host} (attempt {attempt.ToString(CultureInfo.InvariantCulture)}).");
                Start(connection);
                return;
            }
            catch (OperationCanceledException) when (disposed.IsCancellationRequested)
            {
                return;
            }
            catch (IoTHubMqttException ex) when (ex.ErrorId is "IoTHubConnectionFailed" or "IoTHubRequestTimedOut")
            {
                last = ex;
                log?.Invoke($"{Operation}: reconnect attempt {attempt.ToString(CultureInfo.InvariantCulture)} of {maxAttempts.ToString(CultureInfo.InvariantCulture)} failed: {ex.Message}");
            }
            catch (IoTHubMqttException ex)
            {
                events.Writer.TryComplete(ex);
                return;
            }
            catch (Exception ex) when (ex is AmqpException or TimeoutException or IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                last = ex;
                log?.Invoke($"{Operation}: reconnect attempt {attempt.ToString(CultureInfo.InvariantCulture)} of {maxAttempts.ToString(CultureInfo.InvariantCulture)} failed: {ex.Message}");
            }
        }

        events.Writer.TryComplete(new IoTHubMqttException("IoTHubConnectionFailed", IoTHubErrorKind.ConnectionError,
            $"{Operation}: the AMQP connection to {EventHubHost} dropped and {maxAttempts.ToString(CultureInfo.InvariantCulture)} attempt(s) to connect again failed{(last is null ? "." : ": " + last.Message)}",
            "Check the network and that the hub is reachable on its AMQP port, then read again (-StartPosition End skips what was read).", EventHubHost, last));
    }

    /// <summary>Up to <paramref name="max"/> messages, waiting up to <paramref name="wait"/> for the first; none when none came.</summary>
    public async Task<IReadOnlyList<TelemetryEvent>> ReadAsync(int max, TimeSpan wait, CancellationToken cancellationToken = default)
    {
        var batch = new List<TelemetryEvent>();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(wait < TimeSpan.Zero ? TimeSpan.Zero : wait);
        try
        {
            if (!await events.Reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false))
            {
                return batch;
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return batch;
        }

        while (batch.Count < max && events.Reader.TryRead(out var e))
        {
            batch.Add(e);
        }

        return batch;
    }

    private static async Task CloseAsync(TelemetryConnection connection)
    {
        foreach (var (_, link) in connection.Links)
        {
            await AmqpServiceConnection.CloseQuietlyAsync(link).ConfigureAwait(false);
        }

        await connection.Connection.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        TelemetryConnection? connection;
        Task? pending;
        lock (gate)
        {
            if (disposed.IsCancellationRequested)
            {
                return;
            }

            disposed.Cancel();
            connection = current;
            current = null;
            pending = reconnecting;
        }

        if (connection is not null)
        {
            await CloseAsync(connection).ConfigureAwait(false);
        }

        if (pending is not null)
        {
            try
            {
                await pending.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}

/// <summary>
/// The hub's C2D feedback queue: each hub message carries one or more records. <see cref="CompleteAsync"/> takes the
/// records off the queue; <see cref="Abandon"/> (or closing the reader without completing) leaves them for the next reader.
/// </summary>
public sealed class CloudMessageFeedbackReader : IAsyncDisposable
{
    private readonly AmqpServiceConnection connection;
    private readonly ReceiverLink link;
    private readonly string hostName;
    private readonly Channel<Message> messages = Channel.CreateUnbounded<Message>(new UnboundedChannelOptions { SingleReader = true });
    private volatile bool disposing;

    internal CloudMessageFeedbackReader(AmqpServiceConnection connection, ReceiverLink link, string hostName)
    {
        this.connection = connection;
        this.link = link;
        this.hostName = hostName;
        link.Closed += (_, error) =>
        {
            if (!disposing)
            {
                messages.Writer.TryComplete(AmqpErrors.From(error, "Read cloud-to-device feedback", hostName));
            }
        };

        // Deliveries are pushed into a channel that ReceiveAsync waits on with its own timer: a wait always ends.
        link.Start(50, (_, message) => messages.Writer.TryWrite(message));
    }

    /// <summary>The next batch of records, or null when none came within <paramref name="wait"/>.</summary>
    public async Task<CloudMessageFeedbackBatch?> ReceiveAsync(TimeSpan wait, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(wait < TimeSpan.Zero ? TimeSpan.Zero : wait);
        Message? message;
        try
        {
            message = await messages.Reader.ReadAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        catch (ChannelClosedException ex) when (ex.InnerException is IoTHubMqttException inner)
        {
            throw inner;
        }
        catch (ChannelClosedException)
        {
            throw AmqpErrors.From(link.Error, "Read cloud-to-device feedback", hostName);
        }

        return new CloudMessageFeedbackBatch(Parse(message), message);
    }

    /// <summary>Takes the batch's records off the hub's queue.</summary>
    public void Complete(CloudMessageFeedbackBatch batch) => link.Accept(batch.Message);

    /// <summary>Leaves the batch's records on the hub's queue for another reader.</summary>
    public void Abandon(CloudMessageFeedbackBatch batch) => link.Release(batch.Message);

    internal static List<CloudMessageFeedback> Parse(Message message)
    {
        var text = message.BodySection switch
        {
            Data data => Encoding.UTF8.GetString(data.Binary ?? []),
            AmqpValue { Value: string s } => s,
            AmqpValue { Value: byte[] b } => Encoding.UTF8.GetString(b),
            _ => "",
        };
        try
        {
            return (JsonNode.Parse(text) as JsonArray ?? []).OfType<JsonObject>().Select(r => new CloudMessageFeedback(
                ServiceDevice.Text(r, "originalMessageId") ?? "",
                ServiceDevice.Text(r, "deviceId") ?? "",
                ServiceDevice.Text(r, "statusCode") ?? "",
                ServiceDevice.Text(r, "description"),
                ServiceDevice.Time(ServiceDevice.Text(r, "enqueuedTimeUtc")) ?? DateTimeOffset.UtcNow)).ToList();
        }
        catch (JsonException ex)
        {
            throw new IoTHubMqttException("IoTHubInvalidResponse", IoTHubErrorKind.ProtocolError, $"A feedback message is not a JSON array of records: {ex.Message}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        disposing = true;
        await AmqpServiceConnection.CloseQuietlyAsync(link).ConfigureAwait(false);
        await connection.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>The records of one feedback message of the hub.</summary>
public sealed class CloudMessageFeedbackBatch
{
    internal CloudMessageFeedbackBatch(IReadOnlyList<CloudMessageFeedback> records, Message message)
    {
        Records = records;
        Message = message;
    }

    public IReadOnlyList<CloudMessageFeedback> Records { get; }

    internal Message Message { get; }
}
