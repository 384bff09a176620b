using System.Globalization;
using System.Net.Sockets;
using System.Security.Authentication;
using Amqp;
using Amqp.Framing;
using Amqp.Sasl;
using Amqp.Types;
using AmqpConnection = Amqp.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;

namespace IoTHubMqtt.Core.Service;

/// <summary>
/// One AMQP connection (amqps, SASL ANONYMOUS) authorized by CBS: a policy SAS token is put on <c>$cbs</c>
/// (<c>operation=put-token</c>, <c>type=servicebus.windows.net:sastoken</c>, <c>name</c> = the audience) and put again
/// before it expires. Used for the hub's C2D and feedback nodes and for the Event Hub-compatible endpoint.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-amqp-support and the AMQP CBS draft.
/// </summary>
internal sealed class AmqpServiceConnection : IAsyncDisposable
{
    private static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(30);
    private readonly Func<DateTimeOffset, (string Token, DateTimeOffset Expiry)> sign;
    private readonly CancellationTokenSource stopping = new();
    private readonly Action<string>? log;
    private int cbsRequests;

    private AmqpServiceConnection(AmqpConnection connection, Session session, string host, string audience,
        Func<DateTimeOffset, (string Token, DateTimeOffset Expiry)> sign, Action<string>? log)
    {
        Connection = connection;
        Session = session;
        Host = host;
        Audience = audience;
        this.sign = sign;
        this.log = log;
    }

    public AmqpConnection Connection { get; }

    public Session Session { get; }

    public string Host { get; }

    public string Audience { get; }

    public bool IsClosed => Connection.IsClosed;

    /// <summary>Connects, puts the first token and keeps renewing it while the connection lives.</summary>
    public static async Task<AmqpServiceConnection> OpenAsync(string host, int port, TlsTrust trust, string audience,
        Func<DateTimeOffset, (string Token, DateTimeOffset Expiry)> sign, string operation, Action<string>? log, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory();
        factory.SSL.RemoteCertificateValidationCallback = (_, certificate, chain, errors) => trust.Validate(certificate, chain, errors);
        factory.SASL.Profile = SaslProfile.Anonymous;
        factory.AMQP.ContainerId = "iothubmqtt-" + Guid.NewGuid().ToString("N")[..12];
        factory.AMQP.IdleTimeout = 120_000;
        AmqpConnection connection;
        try
        {
            connection = await factory.CreateAsync(new Address(host, port, null, null, "/", "amqps")).WaitAsync(OperationTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is AuthenticationException || ex.InnerException is AuthenticationException)
        {
            throw new IoTHubMqttException(ErrorIds.TlsAuthenticationFailed,
                $"{operation}: the TLS connection to {host}:{port} (AMQP) failed: {(ex as AuthenticationException ?? ex.InnerException)?.Message}",
                "Check the host name and the CA certificate (-CaCertificatePath for the emulator).", host, ex);
        }
        catch (Exception ex) when (ex is SocketException or IOException or TimeoutException or AmqpException or ObjectDisposedException)
        {
            throw new IoTHubMqttException(ErrorIds.IoTHubConnectionFailed,
                $"{operation}: could not reach {host}:{port} over AMQP: {ex.Message}",
                "Check the host name and the network: AMQP uses TCP port 5671, which firewalls often block.", host, ex);
        }

        var session = new Session(connection);
        var result = new AmqpServiceConnection(connection, session, host, audience, sign, log);
        try
        {
            var expiry = await result.PutTokenAsync(operation, cancellationToken).ConfigureAwait(false);
            _ = result.RenewAsync(expiry);
            return result;
        }
        catch
        {
            await result.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Puts a new token on $cbs; a status other than 200/202 is IoTHubUnauthorized.</summary>
    private async Task<DateTimeOffset> PutTokenAsync(string operation, CancellationToken cancellationToken)
    {
        var (token, expiry) = sign(DateTimeOffset.UtcNow);
        var n = Interlocked.Increment(ref cbsRequests).ToString(CultureInfo.InvariantCulture);
        var replyTo = "cbs-reply-" + n;
        var sender = new SenderLink(Session, "cbs-sender-" + n, "$cbs");
        var receiver = new ReceiverLink(Session, "cbs-receiver-" + n, new Attach
        {
            Source = new Source { Address = "$cbs" },
            Target = new Target { Address = replyTo },
        }, null);
        try
        {
            receiver.SetCredit(1);
            var request = new Message(token)
            {
                Properties = new Properties { MessageId = "put-token-" + n, ReplyTo = replyTo },
                ApplicationProperties = new ApplicationProperties(),
            };
            request.ApplicationProperties["operation"] = "put-token";
            request.ApplicationProperties["type"] = "servicebus.windows.net:sastoken";
            request.ApplicationProperties["name"] = Audience;
            await sender.SendAsync(request).WaitAsync(OperationTimeout, cancellationToken).ConfigureAwait(false);
            var response = await receiver.ReceiveAsync(OperationTimeout).WaitAsync(OperationTimeout + OperationTimeout, cancellationToken).ConfigureAwait(false)
                ?? throw new IoTHubMqttException(ErrorIds.IoTHubRequestTimedOut,
                    $"{operation}: {Host} did not answer the CBS token request within {OperationTimeout.TotalSeconds:0} s.", null, Host);
            receiver.Accept(response);
            var status = Convert.ToInt32(response.ApplicationProperties?["status-code"] ?? 0, CultureInfo.InvariantCulture);
            if (status is not (200 or 202))
            {
                var description = response.ApplicationProperties?["status-description"] as string;
                throw new IoTHubMqttException(ErrorIds.IoTHubUnauthorized,
                    $"{operation}: {Host} refused the policy token ({status}{(description is null ? "" : ": " + description)}).",
                    "Check the policy key and name in the connection string (a regenerated key or a policy without the ServiceConnect permission), and the clock.", Host);
            }

            return expiry;
        }
        catch (AmqpException ex)
        {
            throw AmqpErrors.From(ex.Error, operation, Host, ex);
        }
        catch (TimeoutException ex)
        {
            throw new IoTHubMqttException(ErrorIds.IoTHubRequestTimedOut,
                $"{operation}: {Host} did not answer the CBS token request in time.", null, Host, ex);
        }
        finally
        {
            await CloseQuietlyAsync(sender).ConfigureAwait(false);
            await CloseQuietlyAsync(receiver).ConfigureAwait(false);
        }
    }

    private async Task RenewAsync(DateTimeOffset expiry)
    {
        while (!stopping.IsCancellationRequested)
        {
            var wait = (expiry - DateTimeOffset.UtcNow) * 0.85;
            try
            {
                await Task.Delay(wait > TimeSpan.FromSeconds(1) ? wait : TimeSpan.FromSeconds(1), stopping.Token).ConfigureAwait(false);
                expiry = await PutTokenAsync("Renew the AMQP token", stopping.Token).ConfigureAwait(false);
                log?.Invoke($"Put a new policy token on {Host}, valid until {expiry.UtcDateTime:u}.");
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex) when (ex is IoTHubMqttException or AmqpException or ObjectDisposedException)
            {
                log?.Invoke($"Renewing the AMQP token on {Host} failed: {ex.Message}");
                return;
            }
        }
    }

    /// <summary>A request on a management node (<c>$management</c>): application properties in, status and body out.</summary>
    public async Task<Message> RequestAsync(string node, Message request, string operation, CancellationToken cancellationToken)
    {
        var n = Interlocked.Increment(ref cbsRequests).ToString(CultureInfo.InvariantCulture);
        var replyTo = "mgmt-reply-" + n;
        var sender = new SenderLink(Session, "mgmt-sender-" + n, node);
        var receiver = new ReceiverLink(Session, "mgmt-receiver-" + n, new Attach { Source = new Source { Address = node }, Target = new Target { Address = replyTo } }, null);
        try
        {
            receiver.SetCredit(1);
            request.Properties ??= new Properties();
            request.Properties.MessageId = "request-" + n;
            request.Properties.ReplyTo = replyTo;
            await sender.SendAsync(request).WaitAsync(OperationTimeout, cancellationToken).ConfigureAwait(false);
            var response = await receiver.ReceiveAsync(OperationTimeout).WaitAsync(OperationTimeout + OperationTimeout, cancellationToken).ConfigureAwait(false)
                ?? throw new IoTHubMqttException(ErrorIds.IoTHubRequestTimedOut, $"{operation}: {Host} did not answer in time.", null, Host);
            receiver.Accept(response);
            return response;
        }
        catch (AmqpException ex)
        {
            throw AmqpErrors.From(ex.Error, operation, Host, ex);
        }
        catch (TimeoutException ex)
        {
            throw new IoTHubMqttException(ErrorIds.IoTHubRequestTimedOut, $"{operation}: {Host} did not answer in time.", null, Host, ex);
        }
        finally
        {
            await CloseQuietlyAsync(sender).ConfigureAwait(false);
            await CloseQuietlyAsync(receiver).ConfigureAwait(false);
        }
    }

    internal static async Task CloseQuietlyAsync(AmqpObject link)
    {
        try
        {
            await link.CloseAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is AmqpException or ObjectDisposedException or TimeoutException or IOException or SocketException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        stopping.Cancel();
        await CloseQuietlyAsync(Connection).ConfigureAwait(false);
        stopping.Dispose();
    }
}

/// <summary>AMQP error conditions as the module's errors, with the hub's description.</summary>
internal static class AmqpErrors
{
    public static IoTHubMqttException From(Error? error, string operation, string? target, Exception? inner = null)
    {
        var condition = error?.Condition.ToString() ?? "";
        var text = $"{operation}{(target is null ? "" : $" ({target})")}: the hub answered {condition}{(error?.Description is { } d ? ": " + d : "")}";
        return condition switch
        {
            "amqp:not-found" or "com.microsoft:device-not-found" when condition == "com.microsoft:device-not-found" || error?.Description?.Contains("device", StringComparison.OrdinalIgnoreCase) == true =>
                new(ErrorIds.DeviceNotFound, text, "Check the device id, or create it with New-IoTHubDevice.", target, inner),
            "amqp:not-found" => new(ErrorIds.IoTHubResourceNotFound, text, "Check the host name, the consumer group and that this hub offers the operation.", target, inner),
            "amqp:unauthorized-access" => new(ErrorIds.IoTHubUnauthorized, text,
                "Check the policy key and name in the connection string (a regenerated key or a policy without the ServiceConnect permission), and the clock.", target, inner),
            "amqp:resource-limit-exceeded" or "com.microsoft:device-container-throttled" when error?.Description?.Contains("QueueDepth", StringComparison.OrdinalIgnoreCase) == true || error?.Description?.Contains("queue", StringComparison.OrdinalIgnoreCase) == true =>
                new(ErrorIds.CloudMessageQueueFull, text, "The device has 50 undelivered messages: let it receive them first.", target, inner),
            "amqp:resource-limit-exceeded" or "com.microsoft:server-busy" or "com.microsoft:device-container-throttled" or "com.microsoft:iot-hub-quota-exceeded" =>
                new(ErrorIds.IoTHubThrottled, text, "Retry later.", target, inner),
            "amqp:link:message-size-exceeded" => new(ErrorIds.MessageTooLarge, text, "Send a smaller payload (at most 64 KB).", target, inner),
            "amqp:invalid-field" or "amqp:decode-error" or "com.microsoft:argument-error" or "com.microsoft:argument-out-of-range" =>
                new(ErrorIds.IoTHubBadRequest, text, null, target, inner),
            "amqp:connection:forced" or "amqp:link:detach-forced" or "amqp:connection:framing-error" or "" =>
                new(ErrorIds.IoTHubConnectionFailed, text, "The hub closed the AMQP connection: try again.", target, inner),
            _ => new(ErrorIds.IoTHubRequestFailed, text, null, target, inner),
        };
    }
}
