using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Diagnostics;
using IoTHubMqtt.Core.Errors;
using MQTTnet;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// The device twin: GET and reported-properties PATCH as requests answered on <c>$iothub/twin/res/{status}/?$rid=…</c>
/// (matched by request id), and desired-property patches pushed by the service. Throttled (429) and failed (5xx)
/// requests are tried again with backoff for as long as one operation may take.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-mqtt-support#retrieving-a-device-twins-properties
/// </summary>
public sealed class TwinChannel
{
    public const int MaxSectionBytes = 32 * 1024;
    public const int MaxDepth = 10;
    private const int MaxAttempts = 5;

    private readonly DeviceSession session;
    private readonly IoTHubDeviceClientOptions options;
    private readonly TimeProvider time;
    private readonly IoTHubSourceLogger log;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<TwinResponse>> pending = new(StringComparer.Ordinal);
    private readonly Inbox<DesiredPropertiesUpdate> desired;
    private long requestCounter;

    internal TwinChannel(DeviceSession session, IoTHubDeviceClientOptions options)
    {
        this.session = session;
        this.options = options;
        time = options.TimeProvider;
        log = options.Logger.WithSource("Twin");
        desired = new Inbox<DesiredPropertiesUpdate>(time);
    }

    public async Task<DeviceTwin> GetAsync(CancellationToken cancellationToken = default)
    {
        var response = await RequestAsync(DeviceTopics.TwinGet, [], cancellationToken).ConfigureAwait(false);
        try
        {
            return DeviceTwin.Parse(response.Body);
        }
        catch (Exception ex) when (ex is JsonException or FormatException)
        {
            throw new IoTHubMqttException(ErrorIds.TwinMalformed, "The hub sent a twin that is not valid JSON.", null, options.DeviceId, ex);
        }
    }

    /// <summary>Patches reported properties (null values delete) and returns the new reported version.</summary>
    public async Task<long> UpdateReportedAsync(JsonObject patch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(patch);
        var body = Encoding.UTF8.GetBytes(patch.ToJsonString());
        if (body.Length > MaxSectionBytes)
        {
            throw new IoTHubMqttException(ErrorIds.TwinPatchTooLarge,
                $"The reported-properties patch is {body.Length} bytes; a twin section holds at most {MaxSectionBytes} bytes (32 KB).", null, options.DeviceId);
        }

        var depth = Depth(patch);
        if (depth > MaxDepth)
        {
            throw new IoTHubMqttException(ErrorIds.TwinPatchTooDeep,
                $"The reported-properties patch is nested {depth} levels deep; IoT Hub allows {MaxDepth}.", null, options.DeviceId);
        }

        var response = await RequestAsync(DeviceTopics.TwinPatchReported, body, cancellationToken).ConfigureAwait(false);
        return response.Version ?? 0;
    }

    /// <summary>Waits for the next desired-properties patch; null when none arrives within <paramref name="timeout"/>.</summary>
    public Task<DesiredPropertiesUpdate?> ReceiveDesiredAsync(TimeSpan? timeout, CancellationToken cancellationToken = default) =>
        desired.ReceiveAsync(timeout, cancellationToken);

    /// <summary>Takes the message if it is a twin response or a desired-properties patch.</summary>
    internal bool TryAccept(string topic, byte[] payload)
    {
        if (DeviceTopics.TryParseTwinResponse(topic, out var status, out var rid, out var version))
        {
            if (pending.TryGetValue(rid, out var waiting))
            {
                waiting.TrySetResult(new TwinResponse(status, version, payload));
            }

            return true;
        }

        if (!DeviceTopics.TryParseDesiredPatch(topic, out var desiredVersion))
        {
            return false;
        }

        try
        {
            if (JsonNode.Parse(payload) is JsonObject patch)
            {
                var v = desiredVersion ?? patch["$version"]?.GetValue<long>() ?? 0;
                desired.Post(new DesiredPropertiesUpdate(patch, v, time.GetUtcNow()));
            }
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
        {
            log.Warning("Ignored a desired-properties patch that is not JSON.");
        }

        return true;
    }

    internal void Close()
    {
        desired.Close();
        foreach (var waiting in pending.Values)
        {
            waiting.TrySetException(session.Closed());
        }
    }

    private async Task<TwinResponse> RequestAsync(Func<string, string> topicFor, byte[] body, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(session.IsDisposed, typeof(IoTHubDeviceClient));
        var backoff = new Backoff(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10));
        var retryUntil = time.GetUtcNow() + options.OperationTimeout;
        for (var attempt = 1; ; attempt++)
        {
            await session.WaitConnectedAsync(cancellationToken).ConfigureAwait(false);
            var rid = Interlocked.Increment(ref requestCounter).ToString(CultureInfo.InvariantCulture);
            var waiting = new TaskCompletionSource<TwinResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
            pending[rid] = waiting;
            try
            {
                using var timeout = new CancellationTokenSource(options.OperationTimeout, time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, session.Lifetime, timeout.Token);
                var message = new MqttApplicationMessageBuilder().WithTopic(topicFor(rid)).WithPayload(body).Build();
                await session.Mqtt.PublishAsync(message, linked.Token).ConfigureAwait(false);
                var response = await waiting.Task.WaitAsync(linked.Token).ConfigureAwait(false);
                if (response.Status is >= 200 and < 300)
                {
                    return response;
                }

                // Throttling and server errors are transient: tried again while the operation's time lasts.
                var failure = Failure(response);
                var delay = backoff.Next();
                if (failure.IsTransient && time.GetUtcNow() + delay < retryUntil)
                {
                    var pause = Task.Delay(delay, time, cancellationToken);
                    log.Warning($"Twin request answered {response.Status}; next attempt in {delay.TotalSeconds:0.000} s.");
                    await pause.ConfigureAwait(false);
                    continue;
                }

                throw failure;
            }
            catch (Exception ex) when (SessionFailures.IsConnectionLoss(ex) && ex is not OperationCanceledException && !cancellationToken.IsCancellationRequested && !session.Lifetime.IsCancellationRequested)
            {
                if (attempt >= MaxAttempts)
                {
                    throw new IoTHubMqttException(ErrorIds.NotConnected,
                        $"The twin request failed {attempt} times: {ex.Message}", "Check the connection; it comes back by itself when the hub is reachable.", options.DeviceId, ex);
                }

                var delay = backoff.Next();
                var pause = Task.Delay(delay, time, cancellationToken);
                log.Warning($"Twin request attempt {attempt} failed ({ex.GetType().Name}); next attempt in {delay.TotalSeconds:0.000} s.");
                await pause.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && !session.Lifetime.IsCancellationRequested)
            {
                throw new IoTHubMqttException(ErrorIds.TwinRequestTimedOut,
                    $"The hub did not answer the twin request within {options.OperationTimeout.TotalSeconds:0.#} s.", null, options.DeviceId);
            }
            catch (OperationCanceledException) when (session.Lifetime.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw session.Closed();
            }
            finally
            {
                pending.TryRemove(rid, out _);
            }
        }
    }

    private IoTHubMqttException Failure(TwinResponse response)
    {
        var detail = response.Body.Length == 0 ? string.Empty : ": " + Encoding.UTF8.GetString(response.Body);
        var id = options.DeviceId;
        return response.Status switch
        {
            400 => new IoTHubMqttException(ErrorIds.TwinRequestInvalid, $"The hub rejected the twin request (400){detail}", null, id),
            401 or 403 => new IoTHubMqttException(ErrorIds.IoTHubUnauthorized, $"The hub refused the twin request ({response.Status}).", null, id),
            404 => new IoTHubMqttException(ErrorIds.TwinNotFound, "The hub has no twin for this device (404).", null, id),
            413 => new IoTHubMqttException(ErrorIds.TwinPatchTooLarge, $"The twin patch is too large (413){detail}", null, id),
            429 => new IoTHubMqttException(ErrorIds.IoTHubThrottled, "The hub is throttling twin requests (429).", "Wait and try again, or lower the request rate.", id),
            _ => new IoTHubMqttException(ErrorIds.TwinRequestFailed, $"The twin request failed with status {response.Status}{detail}", null, id)
            {
                IsTransient = response.Status >= 500,
            },
        };
    }

    private static int Depth(JsonNode? node) => node switch
    {
        JsonObject o => 1 + (o.Count == 0 ? 0 : o.Max(p => Depth(p.Value))),
        JsonArray a => 1 + (a.Count == 0 ? 0 : a.Max(Depth)),
        _ => 0,
    };

    private sealed record TwinResponse(int Status, long? Version, byte[] Body);
}
