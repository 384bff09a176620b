using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Emulator.Service;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;

using IoTHubMqtt.Emulator.Transport;

namespace IoTHubMqtt.Emulator.Mqtt;

/// <summary>
/// The device side of the hub over MQTT: authenticates CONNECT, authorizes every topic, and implements telemetry,
/// C2D, direct methods and twin on top of an MQTTnet server whose own routing is bypassed (each message goes to
/// exactly one device's session). See https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub
/// </summary>
internal sealed class DeviceEndpoint : IDisposable
{
    public const int MaxTelemetryBytes = 256 * 1024;
    public const int MaxMethodPayloadBytes = 128 * 1024;
    private const string ApiVersionMarker = "api-version=";

    private readonly HubState hub;
    private readonly SasAuthenticator authenticator;
    private readonly EmulatorLog log;
    private readonly ConcurrentDictionary<string, DeviceConnection> connections = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DeviceSubscriptions> subscriptions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, PendingMethod> pendingMethods = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RateLimiter> telemetryRates = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RateLimiter> twinRates = new(StringComparer.Ordinal);
    private readonly ITimer sweep;
    private MqttServer? server;
    private long nextRequestId;
    private long nextConnectionId;
    private int operationsPerSecond;

    public DeviceEndpoint(HubState hub, SasAuthenticator authenticator, EmulatorLog log)
    {
        this.hub = hub;
        this.authenticator = authenticator;
        this.log = log;
        hub.DesiredChanged += OnDesiredChanged;
        hub.CloudToDeviceAvailable += deviceId => _ = DeliverCloudToDeviceAsync(deviceId);
        hub.DeviceRevoked += deviceId => _ = DisconnectAsync(deviceId);
        sweep = hub.Time.CreateTimer(_ => Sweep(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    /// <summary>Devices connected now.</summary>
    public int ConnectedCount => connections.Count;

    public bool IsConnected(string deviceId) => connections.ContainsKey(deviceId);

    /// <summary>Whether the device has subscribed to desired-property notifications.</summary>
    public bool IsSubscribedToDesired(string deviceId) => subscriptions.TryGetValue(deviceId, out var subs) && subs.DesiredQos is not null;

    /// <summary>Devices with remembered subscriptions (connected, or offline with a persistent session).</summary>
    public int SubscriptionStateCount => subscriptions.Count;

    public void Attach(MqttServer mqttServer)
    {
        server = mqttServer;
        mqttServer.ValidatingConnectionAsync += ValidateConnectionAsync;
        mqttServer.ClientConnectedAsync += OnConnectedAsync;
        mqttServer.ClientDisconnectedAsync += OnDisconnectedAsync;
        mqttServer.InterceptingSubscriptionAsync += InterceptSubscriptionAsync;
        mqttServer.InterceptingUnsubscriptionAsync += InterceptUnsubscriptionAsync;
        mqttServer.InterceptingPublishAsync += InterceptPublishAsync;
        mqttServer.ClientAcknowledgedPublishPacketAsync += OnAcknowledgedAsync;
    }

    public void Dispose()
    {
        sweep.Dispose();
        foreach (var pending in pendingMethods.Values)
        {
            pending.Completion.TrySetCanceled();
        }
    }

    // ------------------------------------------------------------------ connect / disconnect

    private Task ValidateConnectionAsync(ValidatingConnectionEventArgs e)
    {
        var clientId = e.ClientId ?? "";
        if (!TryParseUserName(e.UserName, out var hostName, out var deviceId, out var moduleId))
        {
            Refuse(e, MqttConnectReasonCode.BadUserNameOrPassword, $"Refused '{clientId}': the user name is not '{{hub}}/{{deviceId}}/?api-version=…'.");
            return Task.CompletedTask;
        }

        var expectedClientId = moduleId is null ? deviceId : $"{deviceId}/{moduleId}";
        if (clientId != expectedClientId)
        {
            Refuse(e, MqttConnectReasonCode.ClientIdentifierNotValid, $"Refused '{clientId}': the client id does not match the user name.");
            return Task.CompletedTask;
        }

        if (!string.Equals(hostName, hub.HostName, StringComparison.OrdinalIgnoreCase))
        {
            Refuse(e, MqttConnectReasonCode.NotAuthorized, $"Refused '{clientId}': the user name names another hub.");
            return Task.CompletedTask;
        }

        var device = hub.FindDevice(expectedClientId);
        if (device is null || !device.Enabled)
        {
            Refuse(e, MqttConnectReasonCode.NotAuthorized, $"Refused '{clientId}': the device is {(device is null ? "not registered" : "disabled")}.");
            return Task.CompletedTask;
        }

        DateTimeOffset? expires;
        var password = e.RawPassword is { Length: > 0 } raw ? Encoding.UTF8.GetString(raw) : null;
        if (password is null)
        {
            if (!ThumbprintMatches(device, e.ClientCertificate))
            {
                Refuse(e, MqttConnectReasonCode.NotAuthorized, $"Refused '{clientId}': no SAS token and no registered client certificate.");
                return Task.CompletedTask;
            }

            expires = null;
        }
        else
        {
            var resource = moduleId is null ? SasResource.ForDevice(hub.HostName, deviceId) : SasResource.ForModule(hub.HostName, deviceId, moduleId);
            var token = authenticator.Validate(password, resource, info => KeysFor(device, info), out var reason);
            if (token is null)
            {
                Refuse(e, MqttConnectReasonCode.NotAuthorized, $"Refused '{clientId}': {reason}.");
                return Task.CompletedTask;
            }

            expires = token.Expiry + ClockSkew;
        }

        if (Tier?.TryTake(Tiers.TierOperation.DeviceConnection, 1, out _) is not null)
        {
            // Over the tier's rate of new connections: refused as a busy server, to be tried again.
            Refuse(e, MqttConnectReasonCode.ServerUnavailable, $"Refused '{clientId}': the {Tier.Tier} tier's rate of new device connections is used up (throttled).");
            return Task.CompletedTask;
        }

        if (e.CleanSession != false)
        {
            subscriptions.TryRemove(expectedClientId, out _);
        }

        // Keyed and named by the client id string MQTTnet keeps for the connection (equal to expectedClientId), not a copy.
        var adapter = e.ChannelAdapter as DeviceChannelAdapter;
        adapter?.Accepted(clientId);
        SessionItems.UseNone(e);
        connections[clientId] = new DeviceConnection(clientId, expires, Interlocked.Increment(ref nextConnectionId), e.CleanSession != false, adapter);
        return Task.CompletedTask;
    }

    /// <summary>The emulated tier's throttles (new connections, device-to-cloud sends, twin reads and updates), or null.</summary>
    public Tiers.TierThrottles? Tier { get; set; }

    /// <summary>The clock skew the authenticator allows; a connection ends when its token is past expiry by that much.</summary>
    public TimeSpan ClockSkew { get; init; }

    /// <summary>Telemetry publishes and, separately, twin requests one device may make per second before it is throttled; 0 is unlimited.</summary>
    /// <summary>How long a throttled connection waits for the acknowledgements of what it took before it is closed.</summary>
    private static readonly TimeSpan AcknowledgeBeforeCloseBound = TimeSpan.FromSeconds(5);

    public int OperationsPerSecond
    {
        get => Volatile.Read(ref operationsPerSecond);
        set
        {
            Volatile.Write(ref operationsPerSecond, value);
            telemetryRates.Clear();
            twinRates.Clear();
        }
    }

    private bool Throttled(ConcurrentDictionary<string, RateLimiter> rates, string deviceId)
    {
        var rate = OperationsPerSecond;
        return rate > 0 && !rates.GetOrAdd(deviceId, _ => new RateLimiter(rate, hub.Time)).TryAcquire(out _);
    }

    private IEnumerable<string?> KeysFor(DeviceIdentity device, SasTokenInfo token)
    {
        if (token.PolicyName is null)
        {
            return device.AuthType == DeviceAuthType.Sas ? [device.PrimaryKey, device.SecondaryKey] : [];
        }

        return hub.Policies.TryGetValue(token.PolicyName, out var policy) && policy.Permissions.HasFlag(HubPermissions.DeviceConnect)
            ? [policy.PrimaryKey, policy.SecondaryKey]
            : [];
    }

    private bool ThumbprintMatches(DeviceIdentity device, X509Certificate2? certificate)
    {
        if (certificate is null || device.AuthType != DeviceAuthType.SelfSigned)
        {
            return false;
        }

        var now = hub.Now;
        if (certificate.NotBefore.ToUniversalTime() > now || certificate.NotAfter.ToUniversalTime() < now)
        {
            return false;
        }

        var sha1 = certificate.Thumbprint.ToUpperInvariant();
        var sha256 = Convert.ToHexString(certificate.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256));
        return (device.PrimaryThumbprint is { } p && (p == sha1 || p == sha256)) || (device.SecondaryThumbprint is { } s && (s == sha1 || s == sha256));
    }

    private void Refuse(ValidatingConnectionEventArgs e, MqttConnectReasonCode code, string message)
    {
        e.ReasonCode = code;
        log.Information(message);
    }

    /// <summary>Parses <c>{hub}/{deviceId}[/{moduleId}]/?api-version=…</c> (also without the '?').</summary>
    internal static bool TryParseUserName(string? userName, out string hostName, out string deviceId, out string? moduleId)
    {
        hostName = deviceId = "";
        moduleId = null;
        if (string.IsNullOrEmpty(userName))
        {
            return false;
        }

        var path = userName;
        var q = path.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            path = path[..q];
        }
        else
        {
            var marker = path.IndexOf("/" + ApiVersionMarker, StringComparison.Ordinal);
            if (marker >= 0)
            {
                path = path[..marker];
            }
        }

        var parts = path.TrimEnd('/').Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0))
        {
            return false;
        }

        hostName = parts[0];
        deviceId = parts[1];
        moduleId = parts.Length == 3 ? parts[2] : null;
        return true;
    }

    private Task OnConnectedAsync(ClientConnectedEventArgs e)
    {
        hub.SetConnectionState(e.ClientId, true);
        log.Verbose($"Device '{e.ClientId}' connected.");
        if (subscriptions.TryGetValue(e.ClientId, out var subs) && subs.CloudToDeviceQos is not null)
        {
            _ = DeliverCloudToDeviceAsync(e.ClientId); // persistent session: C2D continues after reconnect
        }

        return Task.CompletedTask;
    }

    private Task OnDisconnectedAsync(ClientDisconnectedEventArgs e)
    {
        if (e.DisconnectType == MqttClientDisconnectType.Takeover)
        {
            // A new connection of the same device replaced this one: what this one had not acknowledged goes to the new one.
            hub.AbandonLocked(e.ClientId);
            _ = DeliverCloudToDeviceAsync(e.ClientId);
            return Task.CompletedTask;
        }

        if (connections.TryRemove(e.ClientId, out var ended))
        {
            if (ended.CleanSession)
            {
                subscriptions.TryRemove(e.ClientId, out _); // nothing to keep for a clean session
            }

            hub.SetConnectionState(e.ClientId, false);
            hub.AbandonLocked(e.ClientId);

            // Pending method calls stay open until their timeout: a device may answer from its next connection.
        }

        log.Verbose($"Device '{e.ClientId}' disconnected ({e.DisconnectType}).");
        return Task.CompletedTask;
    }

    private async Task DisconnectAsync(string deviceId)
    {
        if (server is null || !connections.ContainsKey(deviceId))
        {
            return;
        }

        try
        {
            await server.DisconnectClientAsync(deviceId, new MqttServerClientDisconnectOptions { ReasonCode = MqttDisconnectReasonCode.NotAuthorized }).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    private void Sweep()
    {
        var now = hub.Time.GetUtcNow();
        foreach (var connection in connections.Values)
        {
            if (connection.Expires is { } expires && expires <= now)
            {
                log.Information($"Device '{connection.DeviceId}': SAS token expired, closing the connection.");
                _ = DisconnectAsync(connection.DeviceId);
            }
        }

        foreach (var deviceId in hub.DevicesWithExpiredLocks())
        {
            if (connections.ContainsKey(deviceId))
            {
                _ = DeliverCloudToDeviceAsync(deviceId);
            }
        }
    }

    // ------------------------------------------------------------------ subscribe

    private Task InterceptSubscriptionAsync(InterceptingSubscriptionEventArgs e)
    {
        var deviceId = e.ClientId;
        var filter = e.TopicFilter.Topic ?? "";
        var qos = e.TopicFilter.QualityOfServiceLevel == MqttQualityOfServiceLevel.AtMostOnce ? MqttQualityOfServiceLevel.AtMostOnce : MqttQualityOfServiceLevel.AtLeastOnce;
        var subs = subscriptions.GetOrAdd(deviceId, _ => new DeviceSubscriptions());
        switch (FamilyOf(deviceId, filter))
        {
            case TopicFamily.CloudToDevice:
                subs.CloudToDeviceQos = qos;

                // MQTT 3.1.1 §3.8.4 permits PUBLISH packets matching a subscription before its SUBACK.
                _ = Task.Run(() => DeliverCloudToDeviceAsync(deviceId));
                break;
            case TopicFamily.Methods:
                subs.MethodsQos = qos;
                break;
            case TopicFamily.TwinResponses:
                subs.TwinResponseQos = qos;
                break;
            case TopicFamily.Desired:
                subs.DesiredQos = qos;
                break;
            default:
                log.Information($"Device '{deviceId}' subscribed to a topic it may not use; closing the connection.");
                e.ProcessSubscription = false;
                e.CloseConnection = true;
                e.Response.ReasonCode = MqttSubscribeReasonCode.NotAuthorized;
                return Task.CompletedTask;
        }

        e.TopicFilter.QualityOfServiceLevel = qos;
        e.Response.ReasonCode = qos == MqttQualityOfServiceLevel.AtMostOnce ? MqttSubscribeReasonCode.GrantedQoS0 : MqttSubscribeReasonCode.GrantedQoS1;
        return Task.CompletedTask;
    }

    private enum TopicFamily
    {
        None,
        CloudToDevice,
        Methods,
        TwinResponses,
        Desired,
    }

    /// <summary>
    /// What a device's topic filter subscribes it to. C2D: any filter that, by MQTT matching (3.1.1 §4.7), takes in every
    /// topic <c>devices/{its id}/messages/devicebound/{properties}</c> — the documented <c>…/devicebound/#</c>, and
    /// <c>#</c> as the public mosquitto sample for IoT Hub subscribes (Azure-Samples/IoTMQTTSample: <c>mosquitto_sub -t "#"</c>,
    /// which the hub answers with the device's C2D messages). A filter starting with a wildcard matches no <c>$</c> topic
    /// (§4.7.2), so methods and twin topics need their own filters, as the hub documents them.
    /// </summary>
    private static TopicFamily FamilyOf(string deviceId, string filter)
    {
        if (!deviceId.Contains('/', StringComparison.Ordinal) && CoversEveryTopicUnder(filter, ["devices", deviceId, "messages", "devicebound"]))
        {
            return TopicFamily.CloudToDevice;
        }

        return filter switch
        {
            _ when IsTrailingWildcard(filter, "$iothub/methods/POST/") => TopicFamily.Methods,
            _ when IsTrailingWildcard(filter, "$iothub/twin/res/") => TopicFamily.TwinResponses,
            _ when IsTrailingWildcard(filter, "$iothub/twin/PATCH/properties/desired/") => TopicFamily.Desired,
            _ => TopicFamily.None,
        };
    }

    // True when the filter matches every topic made of these levels plus one more (the property bag).
    private static bool CoversEveryTopicUnder(string filter, string[] levels)
    {
        var parts = filter.Split('/');
        for (var i = 0; i < parts.Length; i++)
        {
            if (parts[i] == "#")
            {
                return i == parts.Length - 1;
            }

            if (i == levels.Length)
            {
                return parts[i] == "+" && parts.Length == levels.Length + 1;
            }

            if (parts[i] != "+" && parts[i] != levels[i])
            {
                return false;
            }
        }

        return false;
    }

    private static bool IsTrailingWildcard(string filter, string prefix) =>
        filter.StartsWith(prefix, StringComparison.Ordinal) && filter.Length > prefix.Length && filter[prefix.Length..] is "#" or "+";

    private Task InterceptUnsubscriptionAsync(InterceptingUnsubscriptionEventArgs e)
    {
        if (subscriptions.TryGetValue(e.ClientId, out var subs))
        {
            switch (FamilyOf(e.ClientId, e.Topic ?? ""))
            {
                case TopicFamily.CloudToDevice:
                    subs.CloudToDeviceQos = null;
                    break;
                case TopicFamily.Methods:
                    subs.MethodsQos = null;
                    break;
                case TopicFamily.TwinResponses:
                    subs.TwinResponseQos = null;
                    break;
                case TopicFamily.Desired:
                    subs.DesiredQos = null;
                    break;
            }
        }

        return Task.CompletedTask;
    }

    // ------------------------------------------------------------------ publish from a device

    /// <summary>
    /// The body of a device's publish to keep: MQTTnet decodes each payload into an array of its own (MqttBufferReader.
    /// ReadRemainingData), which nothing else holds once the publish is not routed (ProcessPublish is false), so the whole
    /// array is kept as it is; anything else is copied.
    /// </summary>
    private static byte[] OwnedBody(ReadOnlySequence<byte> payload)
    {
        if (payload.IsSingleSegment && System.Runtime.InteropServices.MemoryMarshal.TryGetArray(payload.First, out var segment)
            && segment.Array is { } array && segment.Offset == 0 && segment.Count == array.Length)
        {
            return array;
        }

        return payload.ToArray();
    }

    /// <summary>
    /// Closes a device's connection at this publish (not acknowledged) once the acknowledgements of the publishes it took
    /// before have been written: MQTTnet queues them for its send loop and drops what is still queued when a connection is
    /// closed, so a device that sends its window in one go had most of what the hub took left unacknowledged, sent it all
    /// again on its next connection and, throttled again, got no further. Bounded in time.
    /// </summary>
    private async Task CloseAfterAcknowledgingAsync(InterceptingPublishEventArgs e, string deviceId)
    {
        if (connections.TryGetValue(deviceId, out var connection) && connection.Adapter is { } adapter)
        {
            var taken = adapter.AtLeastOncePublishesReceived - (e.ApplicationMessage.QualityOfServiceLevel == MqttQualityOfServiceLevel.AtLeastOnce ? 1 : 0);
            try
            {
                await adapter.WhenAcknowledgedAsync(taken).WaitAsync(AcknowledgeBeforeCloseBound, e.CancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                log.Verbose($"Device '{deviceId}': closing before every acknowledgement was written.");
            }
        }

        e.CloseConnection = true;
    }

    private Task InterceptPublishAsync(InterceptingPublishEventArgs e)
    {
        e.ProcessPublish = false; // nothing a device publishes is routed to other MQTT clients
        var deviceId = e.ClientId;
        var message = e.ApplicationMessage;
        var topic = message.Topic ?? "";
        if (message.QualityOfServiceLevel == MqttQualityOfServiceLevel.ExactlyOnce)
        {
            log.Information($"Device '{deviceId}' published with QoS 2, which the hub does not support; closing the connection.");
            e.CloseConnection = true;
            return Task.CompletedTask;
        }

        var payload = message.Payload;
        var slash = deviceId.IndexOf('/', StringComparison.Ordinal);
        var parentId = slash < 0 ? deviceId : deviceId[..slash];
        var moduleId = slash < 0 ? null : deviceId[(slash + 1)..];
        var eventsPrefix = moduleId is null ? $"devices/{deviceId}/messages/events" : $"devices/{parentId}/modules/{moduleId}/messages/events";
        try
        {
            if (topic.StartsWith(eventsPrefix, StringComparison.Ordinal) && (topic.Length == eventsPrefix.Length || topic[eventsPrefix.Length] == '/'))
            {
                if (payload.Length > MaxTelemetryBytes)
                {
                    log.Information($"Device '{deviceId}' sent {payload.Length} bytes, more than {MaxTelemetryBytes}; closing the connection.");
                    e.CloseConnection = true;
                    return Task.CompletedTask;
                }

                if (Tier?.TryTake(Tiers.TierOperation.DeviceToCloud, 1, out _) is not null)
                {
                    log.Information($"Device '{deviceId}': the {Tier.Tier} tier's rate of device-to-cloud sends is used up; throttled, closing the connection.");
                    e.CloseConnection = true;
                    return Task.CompletedTask;
                }

                if (Throttled(telemetryRates, deviceId))
                {
                    // IoT Hub answers a throttled MQTT 3.1.1 device by closing its connection: the publish is not acknowledged.
                    log.Information($"Device '{deviceId}' is over {OperationsPerSecond} telemetry messages a second; throttled, closing the connection.");
                    return CloseAfterAcknowledgingAsync(e, deviceId);
                }

                var bag = topic.Length > eventsPrefix.Length + 1 ? topic[(eventsPrefix.Length + 1)..] : "";
                if (!PropertyBag.TryParse(bag, out var application, out var system))
                {
                    log.Information($"Device '{deviceId}' sent a malformed property bag; closing the connection.");
                    e.CloseConnection = true;
                    return Task.CompletedTask;
                }

                if (message.Retain)
                {
                    application["mqtt-retain"] = "true";
                }

                var body = OwnedBody(payload);
                if (hub.FindDevice(deviceId) is { } identity)
                {
                    // How the sender authenticated, as the hub stamps every message (IoT Hub message construct, system properties).
                    system["iothub-connection-auth-generation-id"] = identity.GenerationId;
                    system["iothub-connection-auth-method"] = "{\"scope\":\"" + (moduleId is null ? "device" : "module") + "\",\"type\":\""
                        + (identity.AuthType == DeviceAuthType.Sas ? "sas" : "x509Certificate") + "\",\"issuer\":\"iothub\",\"acceptingIpFilterRule\":null}";
                }

                hub.AppendTelemetry(seq => new TelemetryMessage
                {
                    SequenceNumber = seq,
                    DeviceId = parentId,
                    ModuleId = moduleId,
                    EnqueuedTimeUtc = hub.Now,
                    Body = body,
                    Properties = application,
                    SystemProperties = system,
                });
                return Task.CompletedTask;
            }

            if ((topic.StartsWith("$iothub/twin/GET/", StringComparison.Ordinal) || topic.StartsWith("$iothub/twin/PATCH/properties/reported/", StringComparison.Ordinal))
                && Throttled(twinRates, deviceId))
            {
                var rid = PropertyBag.QueryValue(topic, "$rid") ?? "";
                log.Verbose($"Device '{deviceId}' is over {OperationsPerSecond} twin requests a second; answered 429.");
                SendTwinResponse(deviceId, $"$iothub/twin/res/429/?$rid={rid}", Encoding.UTF8.GetBytes(HubError.Throttled(1).ToJson()));
                return Task.CompletedTask;
            }

            if (Tier is { } tier && (topic.StartsWith("$iothub/twin/GET/", StringComparison.Ordinal) || topic.StartsWith("$iothub/twin/PATCH/properties/reported/", StringComparison.Ordinal)))
            {
                var operation = topic.StartsWith("$iothub/twin/GET/", StringComparison.Ordinal) ? Tiers.TierOperation.TwinReads : Tiers.TierOperation.TwinUpdates;
                if (tier.TryTake(operation, 1, out var retryAfter) is { } refusal)
                {
                    var rid = PropertyBag.QueryValue(topic, "$rid") ?? "";
                    var error = refusal == Tiers.TierThrottles.Refusal.NotAvailable ? Tiers.TierThrottles.NotAvailable(operation) : HubError.Throttled(retryAfter);
                    SendTwinResponse(deviceId, $"$iothub/twin/res/{error.Status.ToString(CultureInfo.InvariantCulture)}/?$rid={rid}", Encoding.UTF8.GetBytes(error.ToJson()));
                    return Task.CompletedTask;
                }
            }

            if (topic.StartsWith("$iothub/twin/GET/", StringComparison.Ordinal))
            {
                HandleTwinGet(deviceId, topic);
                return Task.CompletedTask;
            }

            if (topic.StartsWith("$iothub/twin/PATCH/properties/reported/", StringComparison.Ordinal))
            {
                HandleReportedPatch(deviceId, topic, payload.ToArray());
                return Task.CompletedTask;
            }

            if (topic.StartsWith("$iothub/methods/res/", StringComparison.Ordinal))
            {
                HandleMethodResponse(deviceId, topic, payload.ToArray());
                return Task.CompletedTask;
            }
        }
        catch (HubError error) when (error.Status == 404)
        {
            // the device was deleted while connected
            e.CloseConnection = true;
            return Task.CompletedTask;
        }
        catch (HubError error) when (error.Status >= 500)
        {
            // not stored, so not acknowledged: the device sends it again on its next connection
            log.Warning($"Device '{deviceId}': {error.Message}; closing the connection without acknowledging.");
            e.CloseConnection = true;
            return Task.CompletedTask;
        }

        log.Information($"Device '{deviceId}' published to a topic it may not use; closing the connection.");
        e.CloseConnection = true;
        return Task.CompletedTask;
    }

    private void HandleTwinGet(string deviceId, string topic)
    {
        var rid = PropertyBag.QueryValue(topic, "$rid") ?? "";
        var sections = hub.GetDeviceTwinSections(deviceId);
        SendTwinResponse(deviceId, $"$iothub/twin/res/200/?$rid={rid}", Encoding.UTF8.GetBytes(sections.ToJsonString()));
    }

    private void HandleReportedPatch(string deviceId, string topic, byte[] body)
    {
        var rid = PropertyBag.QueryValue(topic, "$rid") ?? "";
        try
        {
            var patch = TwinDocument.ParsePatch(body);
            patch.Remove("$version");
            var version = hub.PatchReported(deviceId, patch);
            SendTwinResponse(deviceId, $"$iothub/twin/res/204/?$rid={rid}&$version={version.ToString(CultureInfo.InvariantCulture)}", []);
        }
        catch (HubError error) when (error.Status != 404)
        {
            SendTwinResponse(deviceId, $"$iothub/twin/res/{error.Status.ToString(CultureInfo.InvariantCulture)}/?$rid={rid}", Encoding.UTF8.GetBytes(error.ToJson()));
        }
    }

    private void SendTwinResponse(string deviceId, string topic, byte[] body)
    {
        if (subscriptions.TryGetValue(deviceId, out var subs) && subs.TwinResponseQos is { } qos)
        {
            _ = SendAsync(deviceId, topic, body, qos);
        }
    }

    private void HandleMethodResponse(string deviceId, string topic, byte[] body)
    {
        var rest = topic["$iothub/methods/res/".Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var rid = PropertyBag.QueryValue(topic, "$rid");
        if (slash <= 0 || rid is null || !int.TryParse(rest[..slash], NumberStyles.None, CultureInfo.InvariantCulture, out var status))
        {
            log.Information($"Device '{deviceId}' sent a malformed method response topic; ignored.");
            return;
        }

        if (pendingMethods.TryGetValue(rid, out var pending) && pending.DeviceId == deviceId && pendingMethods.TryRemove(rid, out _))
        {
            pending.Completion.TrySetResult(new MethodResult(status, body));
        }
        else
        {
            log.Verbose($"Device '{deviceId}' answered an unknown or expired method request {rid}.");
        }
    }

    // ------------------------------------------------------------------ to a device

    private async Task<bool> SendAsync(string deviceId, string topic, byte[] payload, MqttQualityOfServiceLevel qos)
    {
        if (server is null || !connections.ContainsKey(deviceId))
        {
            return false;
        }

        MqttSessionStatus session;
        try
        {
            session = await server.GetSessionAsync(deviceId).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            return false;
        }

        var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(qos).Build();
        return session.TryEnqueueApplicationMessage(message, out _);
    }

    private void OnDesiredChanged(string deviceId, JsonObject patch)
    {
        if (subscriptions.TryGetValue(deviceId, out var subs) && subs.DesiredQos is { } qos)
        {
            var version = patch["$version"]!.GetValue<long>();
            _ = SendAsync(deviceId, $"$iothub/twin/PATCH/properties/desired/?$version={version.ToString(CultureInfo.InvariantCulture)}", Encoding.UTF8.GetBytes(patch.ToJsonString()), qos);
        }
    }

    private async Task DeliverCloudToDeviceAsync(string deviceId)
    {
        try
        {
            await DeliverCloudToDeviceCoreAsync(deviceId).ConfigureAwait(false);
        }
        catch (HubError error)
        {
            log.Warning($"C2D delivery to '{deviceId}' stopped: {error.Message}.");
        }
    }

    private async Task DeliverCloudToDeviceCoreAsync(string deviceId)
    {
        if (!connections.ContainsKey(deviceId) || !subscriptions.TryGetValue(deviceId, out var subs) || subs.CloudToDeviceQos is not { } qos)
        {
            return;
        }

        foreach (var message in hub.TakeDeliverable(deviceId))
        {
            var system = new List<KeyValuePair<string, string?>>
            {
                new("mid", message.MessageId),
                new("to", $"/devices/{deviceId}/messages/devicebound"),
                new("cid", message.CorrelationId),
                new("uid", message.UserId),
                new("ct", message.ContentType),
                new("ce", message.ContentEncoding),
                new("exp", message.ExpirySetByService ? message.ExpiryTimeUtc.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture) : null),
            };
            // As the hub sends them (Azure-Samples/IoTMQTTSample, mosquitto_sub against a hub): the system properties, then
            // iothub-ack on every message ("none" when the sender asked for no feedback), then the application properties.
            var application = message.Properties.Prepend(KeyValuePair.Create("iothub-ack", message.Ack ?? "none"));

            var topic = $"devices/{deviceId}/messages/devicebound/{PropertyBag.Build(system, application)}";
            if (!await SendAsync(deviceId, topic, message.Body, qos).ConfigureAwait(false))
            {
                hub.AbandonLocked(deviceId);
                return;
            }

            if (qos == MqttQualityOfServiceLevel.AtMostOnce)
            {
                hub.CompleteCloudToDevice(deviceId, message.MessageId); // no PUBACK will come
            }
        }
    }

    private Task OnAcknowledgedAsync(ClientAcknowledgedPublishPacketEventArgs e)
    {
        var topic = e.PublishPacket.Topic ?? "";
        var prefix = $"devices/{e.ClientId}/messages/devicebound/";
        if (e.IsCompleted && topic.StartsWith(prefix, StringComparison.Ordinal) &&
            PropertyBag.TryParse(topic[prefix.Length..], out _, out var system) && system.TryGetValue("message-id", out var messageId))
        {
            try
            {
                hub.CompleteCloudToDevice(e.ClientId, messageId);
            }
            catch (HubError error)
            {
                log.Warning($"C2D message {messageId} of '{e.ClientId}' could not be completed: {error.Message}; it will be delivered again.");
            }
        }

        return Task.CompletedTask;
    }

    // ------------------------------------------------------------------ direct methods (service side)

    /// <summary>Invokes a direct method; throws <see cref="HubError"/> 404 (offline/unknown) or 504 (no answer in time).</summary>
    public async Task<MethodResult> InvokeMethodAsync(string deviceId, string methodName, byte[] payload, TimeSpan responseTimeout, TimeSpan connectTimeout, CancellationToken cancellationToken = default)
    {
        if (hub.FindDevice(deviceId) is null)
        {
            throw HubError.DeviceNotFound(deviceId);
        }

        if (payload.Length > MaxMethodPayloadBytes)
        {
            throw HubError.MessageTooLarge(MaxMethodPayloadBytes);
        }

        var connectDeadline = hub.Now + connectTimeout;
        MqttQualityOfServiceLevel qos;
        while (!(connections.ContainsKey(deviceId) && subscriptions.TryGetValue(deviceId, out var subs) && subs.MethodsQos is { } q && (qos = q) >= 0))
        {
            if (hub.Now >= connectDeadline)
            {
                throw HubError.DeviceNotOnline(deviceId);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), hub.Time, cancellationToken).ConfigureAwait(false);
        }

        var rid = Interlocked.Increment(ref nextRequestId).ToString("x", CultureInfo.InvariantCulture);
        var pending = new PendingMethod(deviceId, new TaskCompletionSource<MethodResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        pendingMethods[rid] = pending;
        using var abandon = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        // The response timeout runs from the moment the request goes out, before the device can have seen it.
        var answer = pending.Completion.Task.WaitAsync(responseTimeout, hub.Time, abandon.Token);
        try
        {
            if (!await SendAsync(deviceId, $"$iothub/methods/POST/{methodName}/?$rid={rid}", payload, qos).ConfigureAwait(false))
            {
                throw HubError.DeviceNotOnline(deviceId);
            }

            try
            {
                return await answer.ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw HubError.GatewayTimeout(deviceId);
            }
        }
        finally
        {
            pendingMethods.TryRemove(rid, out _);
            if (!answer.IsCompleted)
            {
                await abandon.CancelAsync().ConfigureAwait(false);
                await answer.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            }
        }
    }

    /// <param name="Adapter">The connection's channel (TCP or TLS devices), for acknowledging what was taken before the hub closes it.</param>
    private sealed record DeviceConnection(string DeviceId, DateTimeOffset? Expires, long Id, bool CleanSession, DeviceChannelAdapter? Adapter = null);

    /// <summary>The granted QoS of each topic family a device subscribed to (read and written from several threads).</summary>
    private sealed class DeviceSubscriptions
    {
        private const int None = -1;
        private volatile int cloudToDevice = None;
        private volatile int methods = None;
        private volatile int twinResponse = None;
        private volatile int desired = None;

        public MqttQualityOfServiceLevel? CloudToDeviceQos
        {
            get => Get(cloudToDevice);
            set => cloudToDevice = Set(value);
        }

        public MqttQualityOfServiceLevel? MethodsQos
        {
            get => Get(methods);
            set => methods = Set(value);
        }

        public MqttQualityOfServiceLevel? TwinResponseQos
        {
            get => Get(twinResponse);
            set => twinResponse = Set(value);
        }

        public MqttQualityOfServiceLevel? DesiredQos
        {
            get => Get(desired);
            set => desired = Set(value);
        }

        private static MqttQualityOfServiceLevel? Get(int value) => value == None ? null : (MqttQualityOfServiceLevel)value;

        private static int Set(MqttQualityOfServiceLevel? value) => value is { } qos ? (int)qos : None;
    }

    private sealed record PendingMethod(string DeviceId, TaskCompletionSource<MethodResult> Completion);
}

/// <summary>A device's answer to a direct method: its status and JSON payload bytes.</summary>
internal sealed record MethodResult(int Status, byte[] Payload)
{
    /// <summary>The payload as JSON, or as a JSON string when the device did not send JSON, or null when empty.</summary>
    public JsonNode? PayloadJson()
    {
        if (Payload.Length == 0)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(Payload);
        }
        catch (JsonException)
        {
            return JsonValue.Create(Encoding.UTF8.GetString(Payload));
        }
    }
}
