using System.Buffers;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using IoTHubMqtt.Core.Connection;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Testing;

/// <summary>A device made of a raw MQTTnet client speaking IoT Hub's MQTT topics by hand, over real TLS to the emulator.</summary>
public sealed class MqttTestDevice : IAsyncDisposable
{
    private readonly Channel<MqttApplicationMessage> received = Channel.CreateUnbounded<MqttApplicationMessage>();
    private readonly TaskCompletionSource<MqttClientDisconnectedEventArgs> disconnected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private MqttTestDevice(IMqttClient client, string deviceId)
    {
        Client = client;
        DeviceId = deviceId;
        client.ApplicationMessageReceivedAsync += e =>
        {
            received.Writer.TryWrite(e.ApplicationMessage);
            return Task.CompletedTask;
        };
        client.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };
    }

    public IMqttClient Client { get; }

    public string DeviceId { get; }

    /// <summary>Completes when the server closes the connection.</summary>
    public Task<MqttClientDisconnectedEventArgs> Disconnected => disconnected.Task;

    /// <summary>Client options for a device of the emulator: ClientId, user name and a SAS password over TLS trusting the emulator CA.</summary>
    public static MqttClientOptionsBuilder Options(IoTHubMqtt.Emulator.IoTHubEmulator emulator, string deviceId, string? password, bool cleanSession = true)
    {
        var trust = new EmulatorTrust(emulator.CaCertificatePath);
        return new MqttClientOptionsBuilder()
            .WithTcpServer("localhost", emulator.MqttTlsPort)
            .WithProtocolVersion(MqttProtocolVersion.V311)
            .WithClientId(deviceId)
            .WithCredentials($"{emulator.HostName}/{deviceId}/?api-version=2021-04-12", password)
            .WithCleanSession(cleanSession)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(60))
            .WithTimeout(TimeSpan.FromSeconds(10))
            .WithTlsOptions(o => o.UseTls().WithCertificateValidationHandler(e => trust.Validate(e.Certificate, e.SslPolicyErrors)));
    }

    public static string Token(IoTHubMqtt.Emulator.IoTHubEmulator emulator, string deviceId, string key, TimeSpan? timeToLive = null) =>
        SasToken.CreateForTimeToLive(SasResource.ForDevice(emulator.HostName, deviceId), key, timeToLive ?? TimeSpan.FromHours(1));

    /// <summary>Connects; throws <see cref="MQTTnet.Adapter.MqttConnectingFailedException"/> when refused.</summary>
    public static async Task<MqttTestDevice> ConnectAsync(IoTHubMqtt.Emulator.IoTHubEmulator emulator, string deviceId, string key, bool cleanSession = true, CancellationToken cancellationToken = default)
    {
        var options = Options(emulator, deviceId, Token(emulator, deviceId, key), cleanSession).Build();
        return await ConnectAsync(options, deviceId, cancellationToken).ConfigureAwait(false);
    }

    public static async Task<MqttTestDevice> ConnectAsync(MqttClientOptions options, string deviceId, CancellationToken cancellationToken = default)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var device = new MqttTestDevice(client, deviceId);
        try
        {
            var result = await client.ConnectAsync(options, cancellationToken).ConfigureAwait(false);
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                throw new MqttConnectRefusedException(result.ResultCode);
            }
        }
        catch
        {
            client.Dispose();
            throw;
        }

        return device;
    }

    /// <summary>Connects and disconnects; returns the CONNACK result.</summary>
    public static async Task<MqttClientConnectResultCode> TryConnectAsync(MqttClientOptions options, CancellationToken cancellationToken = default)
    {
        using var client = new MqttClientFactory().CreateMqttClient();
        var result = await client.ConnectAsync(options, cancellationToken).ConfigureAwait(false);
        if (result.ResultCode == MqttClientConnectResultCode.Success)
        {
            await client.DisconnectAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        return result.ResultCode;
    }

    public Task SubscribeAsync(string topic, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce, CancellationToken cancellationToken = default) =>
        Client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(topic, qos).Build(), cancellationToken);

    public Task<MqttClientPublishResult> PublishAsync(string topic, string payload, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce, bool retain = false, CancellationToken cancellationToken = default) =>
        PublishAsync(topic, Encoding.UTF8.GetBytes(payload), qos, retain, cancellationToken);

    public Task<MqttClientPublishResult> PublishAsync(string topic, byte[] payload, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce, bool retain = false, CancellationToken cancellationToken = default) =>
        Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(qos).WithRetainFlag(retain).Build(), cancellationToken);

    /// <summary>The next message on a topic starting with <paramref name="topicPrefix"/> (others are skipped), or a TimeoutException.</summary>
    public async Task<MqttApplicationMessage> ReceiveAsync(string topicPrefix, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        try
        {
            while (true)
            {
                var message = await received.Reader.ReadAsync(cts.Token).ConfigureAwait(false);
                if (message.Topic.StartsWith(topicPrefix, StringComparison.Ordinal))
                {
                    return message;
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No message on '{topicPrefix}' within {timeout ?? TimeSpan.FromSeconds(10)}.");
        }
    }

    /// <summary>True when nothing arrives on the prefix for <paramref name="wait"/>.</summary>
    public async Task<bool> NothingReceivedAsync(string topicPrefix, TimeSpan wait)
    {
        try
        {
            await ReceiveAsync(topicPrefix, wait).ConfigureAwait(false);
            return false;
        }
        catch (TimeoutException)
        {
            return true;
        }
    }

    public static string Text(MqttApplicationMessage message) => Encoding.UTF8.GetString(message.Payload.ToArray());

    public static int StatusOf(MqttApplicationMessage message, string prefix) =>
        int.Parse(message.Topic[prefix.Length..].Split('/')[0], CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        if (Client.IsConnected)
        {
            try
            {
                await Client.DisconnectAsync().ConfigureAwait(false);
            }
            catch (MQTTnet.Exceptions.MqttCommunicationException)
            {
            }
        }

        Client.Dispose();
    }
}

/// <summary>The server refused CONNECT with this code.</summary>
public sealed class MqttConnectRefusedException(MqttClientConnectResultCode resultCode) : Exception($"The server refused the connection: {resultCode}.")
{
    public MqttClientConnectResultCode ResultCode { get; } = resultCode;
}
