using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using IoTHubDevice.Logic.Mqtt;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Exceptions;
using MQTTnet.Protocol;

namespace IoTHubMqtt.FirmwareDevice;

/// <summary>
/// The firmware logic's <see cref="IMqttTransport"/> over an MQTTnet client, so the device logic runs on .NET on the same wire
/// (MQTT 3.1.1 over TLS) as on the board. Synchronous like the M2Mqtt client on the device; every call is bounded by a timeout.
/// </summary>
public sealed class MqttNetTransport : IMqttTransport, IDisposable
{
    private readonly TimeSpan timeout;
    private IMqttClient? client;

    public MqttNetTransport(TimeSpan? timeout = null) => this.timeout = timeout ?? TimeSpan.FromSeconds(10);

    public event MqttMessageHandler? MessageReceived;

    public bool IsConnected => client?.IsConnected == true;

    public int Connect(string host, int port, string caCertificatePem, string clientId, string username, string password, bool cleanSession, int keepAliveSeconds)
    {
        Disconnect();
        var next = new MqttClientFactory().CreateMqttClient();
        next.ApplicationMessageReceivedAsync += e =>
        {
            MessageReceived?.Invoke(e.ApplicationMessage.Topic, System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload));
            return Task.CompletedTask;
        };

        var tls = new MqttClientTlsOptionsBuilder().UseTls().WithTargetHost(host).WithSslProtocols(SslProtocols.Tls12 | SslProtocols.Tls13);
        if (caCertificatePem is not null)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPem(caCertificatePem);
            tls.WithTrustChain(roots).WithRevocationMode(X509RevocationMode.NoCheck);
        }

        var options = new MqttClientOptionsBuilder()
            .WithTcpServer(host, port)
            .WithProtocolVersion(MqttProtocolVersion.V311)
            .WithClientId(clientId)
            .WithCredentials(username, password)
            .WithCleanSession(cleanSession)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(keepAliveSeconds))
            .WithTimeout(timeout)
            .WithTlsOptions(tls.Build())
            .Build();
        try
        {
            using var cts = new CancellationTokenSource(timeout);
            var result = next.ConnectAsync(options, cts.Token).GetAwaiter().GetResult();
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                next.Dispose();
                return ToConnackCode(result.ResultCode);
            }
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or IOException or AuthenticationException or System.Net.Sockets.SocketException)
        {
            next.Dispose();
            return -1;
        }

        client = next;
        return 0;
    }

    public bool Subscribe(string[] topics)
    {
        var current = client;
        if (current is null)
        {
            return false;
        }

        var builder = new MqttClientSubscribeOptionsBuilder();
        foreach (var topic in topics)
        {
            builder.WithTopicFilter(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        }

        try
        {
            using var cts = new CancellationTokenSource(timeout);
            var result = current.SubscribeAsync(builder.Build(), cts.Token).GetAwaiter().GetResult();
            return result.Items.All(i => (int)i.ResultCode <= 2);
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or InvalidOperationException)
        {
            return false;
        }
    }

    public bool Publish(string topic, byte[] payload, int qos)
    {
        var current = client;
        if (current is null || !current.IsConnected)
        {
            return false;
        }

        var message = new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(payload)
            .WithQualityOfServiceLevel(qos == 0 ? MqttQualityOfServiceLevel.AtMostOnce : MqttQualityOfServiceLevel.AtLeastOnce)
            .Build();
        try
        {
            using var cts = new CancellationTokenSource(timeout);
            return current.PublishAsync(message, cts.Token).GetAwaiter().GetResult().IsSuccess;
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or InvalidOperationException)
        {
            return false;
        }
    }

    public void Disconnect()
    {
        var current = client;
        client = null;
        if (current is null)
        {
            return;
        }

        try
        {
            if (current.IsConnected)
            {
                using var cts = new CancellationTokenSource(timeout);
                current.DisconnectAsync(new MqttClientDisconnectOptions(), cts.Token).GetAwaiter().GetResult();
            }
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException)
        {
            // the connection is gone either way
        }
        finally
        {
            current.Dispose();
        }
    }

    public void Dispose() => Disconnect();

    // MQTT 3.1.1 CONNACK return codes, as the device logic (and M2Mqtt on the board) sees them.
    private static int ToConnackCode(MqttClientConnectResultCode code) => code switch
    {
        MqttClientConnectResultCode.UnsupportedProtocolVersion => 1,
        MqttClientConnectResultCode.ClientIdentifierNotValid => 2,
        MqttClientConnectResultCode.ServerUnavailable => 3,
        MqttClientConnectResultCode.BadUserNameOrPassword => 4,
        MqttClientConnectResultCode.NotAuthorized => 5,
        _ => 3,
    };
}
