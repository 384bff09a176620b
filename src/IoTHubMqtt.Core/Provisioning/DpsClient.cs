using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Core.Provisioning;

/// <summary>
/// Registers a device with the Device Provisioning Service over MQTT/TLS: register, then poll the operation while DPS
/// answers 202 (honouring retry-after) until it is assigned or fails. Throttling (429) is waited out the same way.
/// See https://learn.microsoft.com/azure/iot-dps/iot-dps-mqtt-support
/// </summary>
public static class DpsClient
{
    public const string ApiVersion = "2019-03-31";
    private const string ResponseTopicPrefix = "$dps/registrations/res/";

    /// <summary>Registers, and throws ProvisioningNotAssigned when DPS ends the registration without assigning a hub (failed, disabled).</summary>
    public static async Task<DpsRegistrationResult> RegisterAssignedAsync(DpsRegistrationOptions options, CancellationToken cancellationToken = default)
    {
        var result = await RegisterAsync(options, cancellationToken).ConfigureAwait(false);
        return result.IsAssigned ? result : throw new IoTHubMqttException(ErrorIds.ProvisioningNotAssigned,
            $"DPS did not assign '{result.RegistrationId}': {result.Status}{(result.ErrorMessage is null ? "" : ": " + result.ErrorMessage)}.",
            "Check the enrollment (enabled, linked hubs, allocation policy).", result.RegistrationId);
    }

    public static async Task<DpsRegistrationResult> RegisterAsync(DpsRegistrationOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var deviceKey = options.DeviceKey();
        var registrationId = options.RegistrationId;
        var trust = Trust(options.CaCertificatePath, options.UseSystemTrustStore);
        var time = options.TimeProvider;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var timeout = new CancellationTokenSource(options.Timeout, time);
        using var timeoutLink = timeout.Token.Register(deadline.Cancel);
        using var mqtt = new MqttClientFactory().CreateMqttClient();
        var responses = new ConcurrentDictionary<string, TaskCompletionSource<(int Status, string Topic, string Body)>>(StringComparer.Ordinal);
        mqtt.ApplicationMessageReceivedAsync += e =>
        {
            var topic = e.ApplicationMessage.Topic ?? "";
            if (topic.StartsWith(ResponseTopicPrefix, StringComparison.Ordinal))
            {
                var rest = topic[ResponseTopicPrefix.Length..];
                var slash = rest.IndexOf('/', StringComparison.Ordinal);
                var rid = TopicQuery(topic, "$rid");
                if (slash > 0 && int.TryParse(rest[..slash], NumberStyles.None, CultureInfo.InvariantCulture, out var status) && rid is not null && responses.TryRemove(rid, out var waiter))
                {
                    waiter.TrySetResult((status, topic, Encoding.UTF8.GetString(e.ApplicationMessage.Payload)));
                }
            }

            return Task.CompletedTask;
        };

        var now = time.GetUtcNow();
        var expiry = now + TimeSpan.FromHours(1);
        var password = SasToken.Create(SasResource.ForDpsRegistration(options.IdScope, registrationId), deviceKey, expiry, SasResource.DpsRegistrationPolicy, now);
        var connect = new MqttClientOptionsBuilder()
            .WithProtocolVersion(MqttProtocolVersion.V311)
            .WithClientId(registrationId)
            .WithCleanSession(true)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(60))
            .WithTimeout(options.Timeout)
            .WithCredentials($"{options.IdScope}/registrations/{registrationId}/api-version={ApiVersion}", password)
            .WithTcpServer(options.ProvisioningHost, options.Port)
            .WithTlsOptions(tls => tls.UseTls(true)
                .WithTargetHost(options.ProvisioningHost)
                .WithSslProtocols(SslProtocols.Tls12 | SslProtocols.Tls13)
                .WithCertificateValidationHandler(e => trust.Validate(e.Certificate, e.Chain, e.SslPolicyErrors)))
            .Build();
        var where = $"{options.ProvisioningHost}:{options.Port.ToString(CultureInfo.InvariantCulture)}";
        try
        {
            options.Log?.Invoke($"Registering '{registrationId}' with {where} (ID scope {options.IdScope}).");
            // MQTTnet 5 returns a refused CONNACK as a result.
            var connected = await mqtt.ConnectAsync(connect, deadline.Token).ConfigureAwait(false);
            if (connected.ResultCode is MqttClientConnectResultCode.NotAuthorized or MqttClientConnectResultCode.BadUserNameOrPassword)
            {
                throw Unauthorized(registrationId, options.IdScope, null);
            }

            if (connected.ResultCode != MqttClientConnectResultCode.Success)
            {
                throw new IoTHubMqttException(ErrorIds.ProvisioningConnectFailed,
                    $"DPS at {where} refused the connection of '{registrationId}': {connected.ResultCode}.", null, registrationId);
            }

            await mqtt.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(ResponseTopicPrefix + "#", MqttQualityOfServiceLevel.AtLeastOnce).Build(), deadline.Token).ConfigureAwait(false);
            var request = new JsonObject { ["registrationId"] = registrationId };
            string? lastOperationId = null;
            if (options.Payload is not null)
            {
                request["payload"] = options.Payload.DeepClone();
            }

            var requestId = 0;
            var pacing = options.Pacing;
            if (pacing is not null)
            {
                await pacing.WaitAsync(deadline.Token).ConfigureAwait(false);
            }

            var answer = await RequestAsync(mqtt, responses, $"$dps/registrations/PUT/iotdps-register/?$rid={++requestId}", request.ToJsonString(), deadline.Token).ConfigureAwait(false);
            while (true)
            {
                var body = Parse(answer.Body);
                if (answer.Status == 200 || answer.Status == 202 && Text(body, "status") is "assigned" or "failed" or "disabled")
                {
                    return Result(registrationId, body, deviceKey);
                }

                // 202: the registration goes on, poll its operation. Any other answer is an error; a transient one
                // (throttling) is waited out as DPS asked, within the registration's time.
                var failure = answer.Status == 202 ? null : Failure(answer.Status, body, answer.Body, registrationId, options.IdScope);
                if (failure is { IsTransient: false })
                {
                    throw failure;
                }

                var operationId = Text(body, "operationId") ?? lastOperationId;
                lastOperationId = operationId;
                var wait = RetryAfter(answer.Topic);
                if (failure is not null)
                {
                    // Throttled: everyone registering with this gate waits as long as DPS asked.
                    pacing?.CloseFor(wait);
                    options.Log?.Invoke($"'{registrationId}': DPS throttled the request ({answer.Status}); trying again in {wait.TotalSeconds:0.#} s.");
                }
                else
                {
                    options.Log?.Invoke($"'{registrationId}': {answer.Status} {Text(body, "status") ?? ""}; polling in {wait.TotalSeconds:0.#} s.");
                }

                await Task.Delay(wait, time, deadline.Token).ConfigureAwait(false);
                if (pacing is not null)
                {
                    await pacing.WaitAsync(deadline.Token).ConfigureAwait(false);
                }

                answer = operationId is null
                    ? await RequestAsync(mqtt, responses, $"$dps/registrations/PUT/iotdps-register/?$rid={++requestId}", request.ToJsonString(), deadline.Token).ConfigureAwait(false)
                    : await RequestAsync(mqtt, responses, $"$dps/registrations/GET/iotdps-get-operationstatus/?$rid={++requestId}&operationId={operationId}", "", deadline.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IoTHubMqttException(ErrorIds.ProvisioningTimedOut,
                $"The registration of '{registrationId}' with {where} did not finish within {options.Timeout.TotalSeconds:0} s.",
                "Check -ProvisioningHost and -Port, or pass a longer -Timeout.", registrationId, ex);
        }
        catch (MqttCommunicationException ex)
        {
            var tls = ex.InnerException is AuthenticationException || ex is MqttConnectingFailedException { InnerException: AuthenticationException };
            throw new IoTHubMqttException(tls ? ErrorIds.TlsAuthenticationFailed : ErrorIds.ProvisioningConnectFailed, IoTHubErrorKind.ConnectionError,
                $"Could not reach DPS at {where} for '{registrationId}': {ex.InnerException?.Message ?? ex.Message}",
                tls ? "Check the host name and -CaCertificatePath." : "Check -ProvisioningHost and -Port and the network.", registrationId, ex);
        }
        finally
        {
            if (mqtt.IsConnected)
            {
                try
                {
                    await mqtt.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), CancellationToken.None).ConfigureAwait(false);
                }
                catch (MqttCommunicationException)
                {
                }
            }
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string? Path, bool System, DateTime Written), TlsTrust> TrustCache = new();

    /// <summary>One trust per CA file (as last written): a fleet registration reads and parses the file once, not once a device.</summary>
    private static TlsTrust Trust(string? caPath, bool useSystem)
    {
        var written = caPath is not null && File.Exists(caPath) ? File.GetLastWriteTimeUtc(caPath) : default;
        var key = (caPath, useSystem, written);
        if (TrustCache.TryGetValue(key, out var trust))
        {
            return trust;
        }

        trust = new TlsTrust(caPath, useSystem);
        if (TrustCache.Count > 16)
        {
            TrustCache.Clear();
        }

        return TrustCache.GetOrAdd(key, trust);
    }

    private static async Task<(int Status, string Topic, string Body)> RequestAsync(IMqttClient mqtt,
        ConcurrentDictionary<string, TaskCompletionSource<(int Status, string Topic, string Body)>> responses, string topic, string body, CancellationToken cancellationToken)
    {
        var rid = TopicQuery(topic, "$rid")!;
        var waiter = new TaskCompletionSource<(int, string, string)>(TaskCreationOptions.RunContinuationsAsynchronously);
        responses[rid] = waiter;
        await mqtt.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(body).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build(), cancellationToken).ConfigureAwait(false);
        return await waiter.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static DpsRegistrationResult Result(string registrationId, JsonObject body, string deviceKey)
    {
        var state = body["registrationState"] as JsonObject ?? body;
        var status = Text(state, "status") ?? Text(body, "status") ?? "unknown";
        return new DpsRegistrationResult(registrationId, status, Text(state, "assignedHub"), Text(state, "deviceId"), Text(state, "substatus"), Text(state, "errorMessage"), deviceKey);
    }

    private static TimeSpan RetryAfter(string topic)
    {
        var text = TopicQuery(topic, "retry-after");
        var seconds = int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 3;
        return TimeSpan.FromSeconds(Math.Clamp(seconds, 0, 60));
    }

    /// <summary>The error for a DPS answer other than 200/202; its transience (see <see cref="ErrorIds"/>) decides a retry.</summary>
    internal static IoTHubMqttException Failure(int status, JsonObject body, string text, string registrationId, string idScope) => status switch
    {
        401 => Unauthorized(registrationId, idScope, null),
        404 => new IoTHubMqttException(ErrorIds.EnrollmentNotFound,
            $"DPS has no enrollment for '{registrationId}': {Text(body, "message")}", "Create an individual or group enrollment for this device.", registrationId),
        429 => new IoTHubMqttException(ErrorIds.IoTHubThrottled,
            $"DPS throttled the registration of '{registrationId}' (429).", "Register fewer devices at once, or try again later.", registrationId),
        _ => new IoTHubMqttException(ErrorIds.ProvisioningFailed,
            $"DPS answered {status} for '{registrationId}': {Text(body, "message") ?? text}", null, registrationId),
    };

    private static IoTHubMqttException Unauthorized(string registrationId, string idScope, Exception? inner) =>
        new(ErrorIds.ProvisioningUnauthorized,
            $"DPS refused '{registrationId}' in ID scope {idScope}: the key does not match an enrollment.",
            "Check the ID scope and the key (the group key with -GroupKey, the device's own key with -SymmetricKey).", registrationId, inner);

    private static JsonObject Parse(string body)
    {
        try
        {
            return JsonNode.Parse(body.Length == 0 ? "{}" : body) as JsonObject ?? [];
        }
        catch (JsonException)
        {
            return [];
        }
    }

    private static string? TopicQuery(string topic, string name)
    {
        var question = topic.IndexOf('?', StringComparison.Ordinal);
        if (question < 0)
        {
            return null;
        }

        foreach (var pair in topic[(question + 1)..].Split('&'))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && pair[..eq] == name)
            {
                return Uri.UnescapeDataString(pair[(eq + 1)..]);
            }
        }

        return null;
    }

    private static string? Text(JsonObject? json, string name) => json?[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
