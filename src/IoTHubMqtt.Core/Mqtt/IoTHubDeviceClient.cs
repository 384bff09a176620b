using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Diagnostics;
using MQTTnet;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// An IoT Hub device (or module) over MQTT 3.1.1, cut by operation as MQTTnet cuts its client: a session (connect,
/// token renewal, reconnect; <c>Session/</c>), a telemetry sender with one bounded outbox (<see cref="Telemetry"/>),
/// the twin (<see cref="Twin"/>), a method dispatcher (<see cref="Methods"/>) and a C2D inbox
/// (<see cref="CloudToDevice"/>). This façade connects them and routes what the hub sends to the part it is for;
/// its few methods are one call into a part each. Telemetry, twin, method and C2D calls may run concurrently;
/// connect and dispose may not. See https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub
/// </summary>
public sealed class IoTHubDeviceClient : IAsyncDisposable
{
    public const int MaxTelemetryBytes = TelemetrySender.MaxTelemetryBytes;
    public const int MaxMethodResponseBytes = MethodDispatcher.MaxResponseBytes;
    public const int MaxTwinSectionBytes = TwinChannel.MaxSectionBytes;

    private readonly IoTHubDeviceClientOptions options;
    private readonly DeviceTopics topics;
    private readonly DeviceSession session;

    public IoTHubDeviceClient(IoTHubDeviceClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        topics = new DeviceTopics(options.DeviceId, options.ModuleId);
        var subscriptions = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(topics.CloudToDeviceSubscription, MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter(DeviceTopics.MethodsSubscription, MqttQualityOfServiceLevel.AtMostOnce)
            .WithTopicFilter(DeviceTopics.TwinResponseSubscription, MqttQualityOfServiceLevel.AtMostOnce)
            .WithTopicFilter(DeviceTopics.DesiredPropertiesSubscription, MqttQualityOfServiceLevel.AtMostOnce)
            .Build();
        session = new DeviceSession(options, topics, subscriptions, OnMessageAsync);
        Telemetry = new TelemetrySender(session, topics, options);
        Twin = new TwinChannel(session, options);
        Methods = new MethodDispatcher(session, options);
        CloudToDevice = new CloudToDeviceInbox(topics, options.TimeProvider);
        session.Connected += Telemetry.OnConnected;
        session.BeforeRenewal = Telemetry.DrainAsync;
        session.AcknowledgedOnLostConnection = Telemetry.AcknowledgedOnLostConnectionAsync;
    }

    /// <summary>Device-to-cloud messages: <see cref="TelemetrySender.SendAsync"/> streams them through the outbox.</summary>
    public TelemetrySender Telemetry { get; }

    public TwinChannel Twin { get; }

    public MethodDispatcher Methods { get; }

    public CloudToDeviceInbox CloudToDevice { get; }

    public string HostName => options.HostName;

    public string ConnectHostName => options.EffectiveConnectHost;

    public int Port => options.EffectivePort;

    public string DeviceId => options.DeviceId;

    public string? ModuleId => options.ModuleId;

    public IoTHubTransport Transport => options.Transport;

    /// <summary>How many telemetry publishes may wait for their PUBACK at once.</summary>
    public int MaxInFlight => options.MaxInFlight;

    public IoTHubConnectionState State => session.State;

    /// <summary>When the current SAS token expires (null for X.509).</summary>
    public DateTimeOffset? TokenExpiresAt => session.TokenExpiresAt;

    public DateTimeOffset? ConnectedSince => session.ConnectedSince;

    /// <summary>How many times the connection was made again (token renewals included).</summary>
    public int ReconnectCount => session.ReconnectCount;

    /// <summary>How many times the SAS token was renewed.</summary>
    public int TokenRenewalCount => session.TokenRenewalCount;

    /// <summary>The last connection failure, without secrets.</summary>
    public string? LastError => session.LastError;

    /// <summary>The writes the current connection made and the packets they carried (coalesced writes).</summary>
    public (long Writes, long Packets) TransportWrites => session.Channel is { } channel ? (channel.Batches, channel.Packets) : (0, 0);

    /// <summary>Raised on every state change; handlers must be quick and must not throw.</summary>
    public event Action<IoTHubConnectionState>? StateChanged
    {
        add => session.StateChanged += value;
        remove => session.StateChanged -= value;
    }

    public Task ConnectAsync(CancellationToken cancellationToken = default) => session.ConnectAsync(cancellationToken);

    /// <summary>Disconnects for good: no reconnect follows. Unacknowledged C2D messages stay queued at the hub.</summary>
    public async Task DisconnectAsync(CancellationToken cancellationToken = default)
    {
        await session.DisconnectAsync(cancellationToken).ConfigureAwait(false);
        Close();
    }

    public async ValueTask DisposeAsync()
    {
        await session.DisposeAsync().ConfigureAwait(false);
        Close();
        PayloadBuffers.Trim(); // what a burst of large messages left in the body pool goes back to the minimum
    }

    /// <summary>Sends one message and waits for the hub's acknowledgement (through <see cref="Telemetry"/>).</summary>
    public async Task<TelemetrySendResult> SendTelemetryAsync(TelemetryMessage message, CancellationToken cancellationToken = default)
    {
        var acknowledged = await Telemetry.SendAsync(message, cancellationToken).ConfigureAwait(false);
        return await acknowledged.ConfigureAwait(false);
    }

    public Task<CloudToDeviceMessage?> ReceiveCloudToDeviceAsync(TimeSpan? timeout, CancellationToken cancellationToken = default) =>
        CloudToDevice.ReceiveAsync(timeout, cancellationToken);

    public void RegisterMethod(string name) => Methods.Register(name);

    public bool UnregisterMethod(string name) => Methods.Unregister(name);

    public IReadOnlyCollection<string> RegisteredMethods => Methods.Registered;

    public Task<MethodRequest?> ReceiveMethodRequestAsync(TimeSpan? timeout, CancellationToken cancellationToken = default) =>
        Methods.ReceiveAsync(timeout, cancellationToken);

    public Task RespondToMethodAsync(MethodRequest request, int status, byte[]? jsonPayload, CancellationToken cancellationToken = default) =>
        Methods.RespondAsync(request, status, jsonPayload, cancellationToken);

    public Task<DeviceTwin> GetTwinAsync(CancellationToken cancellationToken = default) => Twin.GetAsync(cancellationToken);

    public Task<long> UpdateReportedPropertiesAsync(JsonObject patch, CancellationToken cancellationToken = default) =>
        Twin.UpdateReportedAsync(patch, cancellationToken);

    public Task<DesiredPropertiesUpdate?> ReceiveDesiredPropertiesAsync(TimeSpan? timeout, CancellationToken cancellationToken = default) =>
        Twin.ReceiveDesiredAsync(timeout, cancellationToken);

    public override string ToString() => $"{topics.ClientId}@{options.EffectiveConnectHost} ({State})";

    private void Close()
    {
        Telemetry.Close();
        Twin.Close();
        Methods.Close();
        CloudToDevice.Close();
    }

    private Task OnMessageAsync(MqttApplicationMessageReceivedEventArgs e)
    {
        var topic = e.ApplicationMessage.Topic;
        var payload = System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload);
        if (!CloudToDevice.TryAccept(e, payload) && !Twin.TryAccept(topic, payload) && !Methods.TryAccept(topic, payload))
        {
            options.Logger.WithSource("Client").Warning($"Ignored a message on an unexpected topic ({topic.Length} characters).");
        }

        return Task.CompletedTask;
    }
}
