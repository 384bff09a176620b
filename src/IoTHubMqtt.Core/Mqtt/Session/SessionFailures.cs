using System.Security.Authentication;
using IoTHubMqtt.Core.Errors;
using MQTTnet;
using MQTTnet.Exceptions;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// Transport and protocol failures of the MQTT connection turned into the client's errors, in one place (MQTTnet
/// does the same at its adapter boundary, <c>MqttChannelAdapter.WrapAndThrowException</c>).
/// </summary>
internal static class SessionFailures
{
    /// <summary>
    /// Whether an operation failed because the connection went away (worth trying again once it is back). MQTTnet can
    /// throw a NullReferenceException from a publish that races with the connection being torn down (a hub closing a
    /// throttled device's connection): that is a lost connection too.
    /// </summary>
    public static bool IsConnectionLoss(Exception ex) =>
        ex is MqttCommunicationException or MqttClientNotConnectedException or MqttClientDisconnectedException or ObjectDisposedException or OperationCanceledException
        || ex is NullReferenceException { Source: "MQTTnet" };

    public static IoTHubMqttException ConnectRefused(MqttClientConnectResultCode code, string clientId, string deviceId, string? certificateThumbprint) => code switch
    {
        MqttClientConnectResultCode.BadUserNameOrPassword or MqttClientConnectResultCode.NotAuthorized when certificateThumbprint is not null =>
            new IoTHubMqttException(ErrorIds.IoTHubUnauthorized,
                $"The hub refused the client certificate of '{clientId}' (thumbprint {certificateThumbprint}, {code}).",
                "Check that the device is registered for X.509 with this certificate's thumbprint (or CA), that it is enabled, and that the certificate is valid now.", deviceId),
        MqttClientConnectResultCode.BadUserNameOrPassword or MqttClientConnectResultCode.NotAuthorized =>
            new IoTHubMqttException(ErrorIds.IoTHubUnauthorized,
                $"The hub refused the credentials of '{clientId}' ({code}).",
                "Check the device id and key, that the device is enabled, and the machine's clock (tokens allow about 5 minutes of skew).", deviceId),
        MqttClientConnectResultCode.ClientIdentifierNotValid =>
            new IoTHubMqttException(ErrorIds.IoTHubClientIdRejected,
                $"The hub rejected the client id '{clientId}'.", "Check the device id.", deviceId),
        MqttClientConnectResultCode.ServerUnavailable or MqttClientConnectResultCode.ServerBusy or MqttClientConnectResultCode.QuotaExceeded =>
            new IoTHubMqttException(ErrorIds.IoTHubUnavailable,
                $"The hub is unavailable or throttling connections ({code}).", "Wait and retry; the client backs off by itself.", deviceId),
        _ => new IoTHubMqttException(ErrorIds.IoTHubConnectRefused,
            $"The hub refused the connection ({code}).", null, deviceId),
    };

    public static IoTHubMqttException Communication(string host, Exception ex)
    {
        for (Exception? inner = ex; inner is not null; inner = inner.InnerException)
        {
            if (inner is AuthenticationException)
            {
                return new IoTHubMqttException(ErrorIds.TlsAuthenticationFailed,
                    $"The TLS handshake with {host} failed: {inner.Message}",
                    "Trust the server's CA (-CaCertificatePath for the emulator or a private gateway) and check the host name.", host, ex);
            }

            if (inner is System.Net.Sockets.SocketException socket)
            {
                return new IoTHubMqttException(ErrorIds.ConnectionFailed,
                    $"Could not connect to {host}: {socket.Message}", "Check the host name, the port and the network.", host, ex);
            }
        }

        return new IoTHubMqttException(ErrorIds.ConnectionFailed, $"The connection to {host} failed: {ex.Message}", null, host, ex);
    }

    public static IoTHubMqttException ConnectTimedOut(string host, int port, TimeSpan timeout, Exception? inner) =>
        new(ErrorIds.ConnectTimedOut,
            $"No answer from {host}:{port} within {timeout.TotalSeconds:0} s.",
            "Check the host name and port, and that outbound port 8883 (or 443 with -Transport WebSocket) is open.", host, inner);

    public static IoTHubMqttException Closed(string clientId, string deviceId) =>
        new(ErrorIds.ConnectionClosed, $"The connection of '{clientId}' is closed.", "Connect again with Connect-IoTHub.", deviceId);

    public static IoTHubMqttException NotConnected(string deviceId) =>
        new(ErrorIds.NotConnected, IoTHubErrorKind.InvalidOperation, "The device is not connected.", "Call Connect-IoTHub (ConnectAsync) first.", deviceId);

    public static IoTHubMqttException StillDisconnected(string deviceId, TimeSpan timeout, string? lastError) =>
        new(ErrorIds.NotConnected,
            $"The device has been disconnected for more than {timeout.TotalSeconds:0} s{(lastError is null ? "" : $" ({lastError})")}; it keeps reconnecting.",
            "Check the network and the hub; the connection comes back by itself when the hub is reachable.", deviceId);

    public static IoTHubMqttException TokenExpired(DateTimeOffset expiry, string? deviceId) =>
        new(ErrorIds.SasTokenExpired,
            $"The SAS token expired at {expiry.UtcDateTime:u}.", "Create a new token, or connect with the device key so tokens are renewed.", deviceId);
}
