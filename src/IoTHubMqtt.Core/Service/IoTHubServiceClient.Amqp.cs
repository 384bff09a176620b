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
/// The hub's AMQP service surface (the same for a hub in Azure and for the emulator), written over AMQPNetLite because
/// no Azure library serves it without the IoT Hub SDKs: C2D send on <c>/messages/devicebound</c>, delivery feedback
/// from <c>/messages/servicebound/feedback</c>, and the redirect of the hub's <c>messages/events</c> node that names its
/// Event Hub-compatible endpoint (read with Azure.Messaging.EventHubs, see IoTHubServiceClient.Telemetry.cs).
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
                    throw new IoTHubMqttException(ErrorIds.AmqpNotAvailable,
                        $"The emulator {HostName} runs without its AMQP endpoint, which C2D messages, feedback and telemetry need.",
                        "Start the emulator without -AmqpPort -1.", HostName);
                }
            }
            catch (IoTHubMqttException ex) when (ex.ErrorId == ErrorIds.IoTHubResourceNotFound)
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
                throw new IoTHubMqttException(ErrorIds.InvalidPropertyName,
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
                throw new IoTHubMqttException(ErrorIds.IoTHubRequestTimedOut,
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

    internal static (string Host, int Port, string Entity) ParseRedirect(Error redirect, string operation)
    {
        var info = redirect.Info;
        var address = info?[new Symbol("address")] as string;
        if (address is null || !Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Segments.Length < 2)
        {
            throw new IoTHubMqttException(ErrorIds.TelemetryRedirectInvalid,
                $"{operation}: the hub redirected to '{address}', which is not an AMQP address of an Event Hub.", null, address);
        }

        var host = info?[new Symbol("hostname")] as string ?? uri.Host;
        var port = info?[new Symbol("port")] is { } p ? Convert.ToInt32(p, CultureInfo.InvariantCulture) : uri.Port > 0 ? uri.Port : 5671;
        var entity = Uri.UnescapeDataString(uri.Segments[1].TrimEnd('/'));
        return (host, port, entity);
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

    #endregion
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
            throw new IoTHubMqttException(ErrorIds.IoTHubInvalidResponse, $"A feedback message is not a JSON array of records: {ex.Message}");
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
