using System.Collections.Concurrent;
using System.Text.Json;
using IoTHubMqtt.Core.Diagnostics;
using IoTHubMqtt.Core.Errors;
using MQTTnet;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// Direct methods: calls of registered method names wait in an inbox for the application, which answers each with a
/// status and a JSON payload; calls of other names are answered 501 at once. Requests arrive on
/// <c>$iothub/methods/POST/{method}/?$rid={rid}</c>, answers go to <c>$iothub/methods/res/{status}/?$rid={rid}</c>.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-direct-methods
/// </summary>
public sealed class MethodDispatcher
{
    public const int MaxResponseBytes = 128 * 1024;

    private readonly DeviceSession session;
    private readonly IoTHubDeviceClientOptions options;
    private readonly IoTHubSourceLogger log;
    private readonly ConcurrentDictionary<string, byte> registered = new(StringComparer.Ordinal);
    private readonly Inbox<MethodRequest> inbox;

    internal MethodDispatcher(DeviceSession session, IoTHubDeviceClientOptions options)
    {
        this.session = session;
        this.options = options;
        log = options.Logger.WithSource("Methods");
        inbox = new Inbox<MethodRequest>(options.TimeProvider);
    }

    /// <summary>The method names whose calls are queued for <see cref="ReceiveAsync"/>.</summary>
    public IReadOnlyCollection<string> Registered => registered.Keys.ToList();

    /// <summary>Calls of this method name are queued for <see cref="ReceiveAsync"/>; others are answered 501.</summary>
    public void Register(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        registered[name] = 0;
    }

    public bool Unregister(string name) => registered.TryRemove(name, out _);

    /// <summary>Waits for the next call of a registered method; null when none arrives within <paramref name="timeout"/>.</summary>
    public Task<MethodRequest?> ReceiveAsync(TimeSpan? timeout, CancellationToken cancellationToken = default) =>
        inbox.ReceiveAsync(timeout, cancellationToken);

    /// <summary>Answers a call with a status and a JSON payload (null becomes JSON null).</summary>
    public async Task RespondAsync(MethodRequest request, int status, byte[]? jsonPayload, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var payload = jsonPayload is null || jsonPayload.Length == 0 ? "null"u8.ToArray() : jsonPayload;
        if (payload.Length > MaxResponseBytes)
        {
            throw new IoTHubMqttException(ErrorIds.MethodResponseTooLarge,
                $"The response to '{request.Name}' is {payload.Length} bytes; at most {MaxResponseBytes} bytes (128 KB) are allowed.", null, request.Name);
        }

        await session.WaitConnectedAsync(cancellationToken).ConfigureAwait(false);
        var message = new MqttApplicationMessageBuilder().WithTopic(DeviceTopics.MethodResponse(status, request.RequestId)).WithPayload(payload).Build();
        using var timeout = new CancellationTokenSource(options.OperationTimeout, options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, session.Lifetime, timeout.Token);
        try
        {
            await session.Mqtt.PublishAsync(message, linked.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (SessionFailures.IsConnectionLoss(ex) && !cancellationToken.IsCancellationRequested)
        {
            // The service will answer its caller with a timeout; the device can do nothing more for this call.
            throw new IoTHubMqttException(ErrorIds.MethodResponseNotSent,
                $"The answer to '{request.Name}' could not be sent: {ex.Message}", "Check the connection.", request.Name, ex);
        }
    }

    /// <summary>Takes the message if it is a method call: queues it, or answers 501 for a method nobody registered.</summary>
    internal bool TryAccept(string topic, byte[] payload)
    {
        if (!DeviceTopics.TryParseMethodRequest(topic, out var name, out var requestId))
        {
            return false;
        }

        var request = new MethodRequest(name, requestId, payload, options.TimeProvider.GetUtcNow());
        if (registered.ContainsKey(name))
        {
            inbox.Post(request);
        }
        else
        {
            var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["message"] = $"The device has no handler for method '{name}'." });
            _ = RespondQuietlyAsync(request, 501, body);
        }

        return true;
    }

    internal void Close() => inbox.Close();

    private async Task RespondQuietlyAsync(MethodRequest request, int status, byte[] body)
    {
        try
        {
            await RespondAsync(request, status, body, session.Lifetime).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Nobody waits for this answer: whatever went wrong is only logged.
            log.Warning($"Could not answer method '{request.Name}'", ex);
        }
    }
}
