using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading.Channels;
using Amqp;
using Amqp.Framing;
using Amqp.Listener;
using Amqp.Types;
using IoTHubMqtt.Emulator.Hub;

namespace IoTHubMqtt.Emulator.Service;

/// <summary>
/// The hub's service-side AMQP endpoint (amqps, like port 5671): CBS token authorization on <c>$cbs</c>, C2D send on
/// <c>/messages/devicebound</c>, C2D delivery feedback on <c>/messages/servicebound/feedback</c> (each record delivered
/// until a reader accepts it), and <c>messages/events…</c>, which redirects (<c>amqp:link:redirect</c>) as the hub does to
/// its Event Hub-compatible entity, served on this same endpoint: <c>{eventHub}/ConsumerGroups/{cg}/Partitions/{p}</c>,
/// with <c>$management</c> READ for the partition ids. Sequence numbers count per partition, as Event Hubs does; offsets
/// are the emulator's hub-wide sequence numbers (increasing within each partition, with gaps).
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-amqp-support
/// </summary>
internal sealed class AmqpEndpoint : IDisposable
{
    /// <summary>How long a client has for its TLS handshake and protocol header, and then for its SASL exchange.</summary>
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(30);

    private readonly ContainerHost host;
    private readonly HubState hub;
    private readonly SasAuthenticator authenticator;
    private readonly EmulatorLog log;
    private readonly X509Certificate2 certificate;
    private readonly TcpListener tcp;
    private readonly AcceptedTransports saslTransports = new();
    private readonly AcceptedTransports plainTransports = new();
    private readonly CancellationTokenSource stopping = new();
    private readonly ConditionalWeakTable<Connection, AuthorizedConnection> authorized = new();
    private readonly CbsNode cbs;
    private readonly List<Socket> sockets = [];

    /// <summary>
    /// One TCP port serves both ways the hub is reached: after TLS, a client that starts with the SASL header (protocol
    /// id 3; AMQPNetLite, the .NET SDKs) goes to a listener that negotiates SASL ANONYMOUS, and one that starts directly
    /// with the AMQP header (protocol id 0; the Node.js SDK) goes to a listener without SASL. Either way the connection
    /// is authorized only by a CBS put-token. The endpoint accepts and routes the sockets itself and hands each stream to
    /// its AMQPNetLite listener through a custom transport.
    /// </summary>
    public AmqpEndpoint(System.Net.IPAddress address, int port, X509Certificate2 certificate, HubState hub, SasAuthenticator authenticator, EmulatorLog log)
    {
        this.hub = hub;
        this.authenticator = authenticator;
        this.log = log;
        this.certificate = certificate;
        Port = port;
        tcp = new TcpListener(address, port);
        if (address.Equals(System.Net.IPAddress.IPv6Any))
        {
            tcp.Server.DualMode = true;
        }

        const string saslScheme = "iothub-emulator-sasl";
        const string plainScheme = "iothub-emulator-plain";
        host = new ContainerHost([
            new Address(address.ToString(), port, null, null, "/", saslScheme),
            new Address(address.ToString(), port, null, null, "/", plainScheme),
        ]);
        host.CustomTransports[saslScheme] = saslTransports;
        host.CustomTransports[plainScheme] = plainTransports;
        host.Listeners[0].SASL.EnableAnonymousMechanism = true;
        cbs = new CbsNode(this);
        host.RegisterRequestProcessor("$management", new ManagementProcessor(this));
        host.RegisterLinkProcessor(new LinkProcessor(this));
    }

    public int Port { get; }

    /// <summary>The emulated tier's throttles (cloud-to-device sends), or null.</summary>
    public Tiers.TierThrottles? Tier { get; set; }

    public void Start()
    {
        tcp.Start();
        host.Open();
        _ = Task.Run(AcceptAsync);
    }

    public void Dispose()
    {
        stopping.Cancel();
        tcp.Stop();
        host.Close();
    }

    /// <summary>How many AMQP connections are open.</summary>
    public int ConnectionCount
    {
        get
        {
            lock (sockets)
            {
                return sockets.Count(s => !s.SafeHandle.IsClosed);
            }
        }
    }

    /// <summary>
    /// Drops every open AMQP connection at the transport level, as a network fault would: the sockets are reset, with
    /// no AMQP close. Returns how many were open.
    /// </summary>
    public int DropConnections()
    {
        Socket[] open;
        lock (sockets)
        {
            open = [.. sockets];
            sockets.Clear();
        }

        var dropped = 0;
        foreach (var socket in open)
        {
            try
            {
                if (!socket.SafeHandle.IsClosed)
                {
                    dropped++;
                }

                // A zero linger time makes Close send a reset, not an orderly shutdown.
                socket.LingerState = new LingerOption(true, 0);
                socket.Close();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }
        }

        log.Information($"AMQP: dropped {dropped} connection(s).");
        return dropped;
    }

    private async Task AcceptAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await tcp.AcceptSocketAsync(stopping.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                break;
            }
            catch (SocketException ex)
            {
                if (stopping.IsCancellationRequested)
                {
                    break;
                }

                log.Verbose($"AMQP accept failed: {ex.SocketErrorCode}.");
                continue;
            }

            lock (sockets)
            {
                sockets.RemoveAll(s => s.SafeHandle.IsClosed);
                sockets.Add(socket);
            }

            _ = Task.Run(() => RouteAsync(socket));
        }
    }

    /// <summary>Does the TLS handshake, reads the client's protocol header and hands the stream to the listener for it.</summary>
    private async Task RouteAsync(Socket socket)
    {
        socket.NoDelay = true;
        var stream = new SslStream(new NetworkStream(socket, ownsSocket: true));
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token);
            timeout.CancelAfter(HandshakeTimeout);
            await stream.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }, timeout.Token).ConfigureAwait(false);
            var header = new byte[8];
            await stream.ReadExactlyAsync(header, timeout.Token).ConfigureAwait(false);
            var amqp = header[0] == 'A' && header[1] == 'M' && header[2] == 'Q' && header[3] == 'P';
            if (amqp && header[4] == 3)
            {
                saslTransports.Offer(new StreamTransport(stream, header));
            }
            else if (amqp && header[4] == 0)
            {
                plainTransports.Offer(new StreamTransport(stream, header));
            }
            else
            {
                // As the protocol asks of a peer that does not support the requested header: answer with one it does, and close.
                log.Verbose("AMQP: refused a connection that did not start with an AMQP or SASL protocol header.");
                await stream.WriteAsync("AMQP\u0003\u0001\u0000\u0000"u8.ToArray(), timeout.Token).ConfigureAwait(false);
                await stream.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or AuthenticationException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
            log.Verbose($"AMQP: a connection ended before its protocol header: {ex.Message}");
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The streams routed to one AMQPNetLite listener. The listener asks for the next transport only once it has set up
    /// the previous one (with SASL, after the whole SASL exchange), so a client that stalls there is cut off after
    /// <see cref="HandshakeTimeout"/> rather than holding up everyone after it.
    /// </summary>
    private sealed class AcceptedTransports : TransportProvider
    {
        private readonly Channel<StreamTransport> accepted = Channel.CreateUnbounded<StreamTransport>();
        private StreamTransport? current;

        public void Offer(StreamTransport transport)
        {
            if (!accepted.Writer.TryWrite(transport))
            {
                transport.Close();
            }
        }

        public override async Task<IAsyncTransport> CreateAsync(Address address)
        {
            // The previous transport is set up, or the listener gave up on it (a failed SASL exchange): then close it.
            current?.EndHandshake();
            if (current is { HasConnection: false })
            {
                current.Close();
            }

            current = null;
            while (await accepted.Reader.WaitToReadAsync().ConfigureAwait(false))
            {
                if (accepted.Reader.TryRead(out var next))
                {
                    next.StartHandshake(HandshakeTimeout);
                    current = next;
                    return next;
                }
            }

            // Closed. The listener's accept loop asks again after any failure, so it must wait here for good.
            return await new TaskCompletionSource<IAsyncTransport>().Task.ConfigureAwait(false);
        }

        public override void Dispose()
        {
            accepted.Writer.TryComplete();
            while (accepted.Reader.TryRead(out var transport))
            {
                transport.Close();
            }

            current?.EndHandshake();
        }
    }

    /// <summary>An AMQPNetLite transport over the TLS stream, giving back the protocol header the router read first.</summary>
    private sealed class StreamTransport(SslStream stream, byte[] header) : IAsyncTransport
    {
        private readonly CancellationTokenSource handshake = new();
        private int replayed;

        public void StartHandshake(TimeSpan timeout) =>
            _ = Task.Delay(timeout, handshake.Token).ContinueWith(t =>
            {
                if (!t.IsCanceled)
                {
                    Close();
                }
            }, TaskScheduler.Default);

        public void EndHandshake() => handshake.Cancel();

        /// <summary>True once a connection runs over this transport.</summary>
        public bool HasConnection { get; private set; }

        public void SetConnection(Connection connection) => HasConnection = true;

        public async Task SendAsync(IList<ByteBuffer> bufferList, int listSize)
        {
            if (bufferList.Count == 1)
            {
                await stream.WriteAsync(bufferList[0].Buffer.AsMemory(bufferList[0].Offset, bufferList[0].Length)).ConfigureAwait(false);
            }
            else
            {
                // One write, so that the frames go out in as few TLS records as they fit.
                var joined = new byte[listSize];
                var at = 0;
                foreach (var buffer in bufferList)
                {
                    Buffer.BlockCopy(buffer.Buffer, buffer.Offset, joined, at, buffer.Length);
                    at += buffer.Length;
                }

                await stream.WriteAsync(joined.AsMemory(0, at)).ConfigureAwait(false);
            }

            await stream.FlushAsync().ConfigureAwait(false);
        }

        public Task<int> ReceiveAsync(byte[] buffer, int offset, int count) =>
            Replay(buffer, offset, count) is var n and > 0 ? Task.FromResult(n) : stream.ReadAsync(buffer, offset, count);

        public void Send(ByteBuffer buffer)
        {
            stream.Write(buffer.Buffer, buffer.Offset, buffer.Length);
            stream.Flush();
        }

        public int Receive(byte[] buffer, int offset, int count) =>
            Replay(buffer, offset, count) is var n and > 0 ? n : stream.Read(buffer, offset, count);

        public void Close()
        {
            handshake.Cancel();
            stream.Dispose();
        }

        private int Replay(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(count, header.Length - replayed);
            if (n <= 0)
            {
                return 0;
            }

            Array.Copy(header, replayed, buffer, offset, n);
            replayed += n;
            return n;
        }
    }

    /// <summary>
    /// A CBS audience (and token resource) whose host is the hub's name with this endpoint's own port appended, as the
    /// Node.js service SDK builds it from <c>HostName=localhost:{AmqpPort}</c>, stands for the hub itself; any other
    /// port does not.
    /// </summary>
    private string WithoutOwnPort(string resource)
    {
        var ownHost = hub.HostName + ":" + Port.ToString(CultureInfo.InvariantCulture);
        return resource.StartsWith(ownHost, StringComparison.OrdinalIgnoreCase) && (resource.Length == ownHost.Length || resource[ownHost.Length] == '/')
            ? hub.HostName + resource[ownHost.Length..]
            : resource;
    }

    private bool IsAuthorized(ListenerLink link) =>
        authorized.TryGetValue(link.Session.Connection, out var state) && state.Expires > DateTimeOffset.UtcNow;

    /// <summary>$management READ of the Event Hub-compatible entity: its partition ids (as Event Hubs answers).</summary>
    private sealed class ManagementProcessor(AmqpEndpoint owner) : IRequestProcessor
    {
        public int Credit => 100;

        public void Process(RequestContext requestContext)
        {
            var request = requestContext.Message;
            var operation = request.ApplicationProperties?["operation"] as string;
            var name = request.ApplicationProperties?["name"] as string;
            var response = new Message
            {
                Properties = new Properties { CorrelationId = request.Properties?.MessageId },
                ApplicationProperties = new ApplicationProperties(),
            };
            int status;
            string description;
            if (!owner.IsAuthorized(requestContext.Link))
            {
                (status, description) = (401, "Put a service token on $cbs first.");
            }
            else if (operation != "READ" || !string.Equals(name, owner.hub.EventHubName, StringComparison.OrdinalIgnoreCase))
            {
                (status, description) = (404, $"No entity '{name}' (operation '{operation}').");
            }
            else
            {
                var ids = Enumerable.Range(0, owner.hub.PartitionCount).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
                response.BodySection = new AmqpValue
                {
                    Value = new Map
                    {
                        ["name"] = owner.hub.EventHubName,
                        ["type"] = "com.microsoft:eventhub",
                        ["created_at"] = DateTime.UnixEpoch,
                        ["partition_count"] = ids.Length,
                        ["partition_ids"] = ids,
                    },
                };
                (status, description) = (200, "OK");
            }

            response.ApplicationProperties["status-code"] = status;
            response.ApplicationProperties["status-description"] = description;
            requestContext.Complete(response);
        }
    }

    /// <summary>
    /// The <c>$cbs</c> node: put-token requests on a link to it, a service policy token (ServiceConnect) authorizing the
    /// connection. The answer goes back on a link from <c>$cbs</c> on the same connection: the one whose target address
    /// is the request's reply-to, or else one with no target address, as the Node.js SDK attaches it (the hub answers on
    /// it; AMQPNetLite's own request processor would look the reply-to up among all connections' target addresses).
    /// </summary>
    private sealed class CbsNode(AmqpEndpoint owner)
    {
        private readonly ConditionalWeakTable<Connection, List<(string? Address, ListenerLink Link)>> replyLinks = new();

        public void AttachRequests(AttachContext attachContext) => attachContext.Complete(new Requests(this), 100);

        public void AttachReplies(AttachContext attachContext)
        {
            var link = attachContext.Link;
            var address = (attachContext.Attach.Target as Target)?.Address;
            var links = replyLinks.GetValue(link.Session.Connection, _ => []);
            lock (links)
            {
                links.Add((address, link));
            }

            link.Closed += (_, _) =>
            {
                lock (links)
                {
                    links.RemoveAll(l => l.Link == link);
                }
            };
            link.InitializeSender((_, _, _) => { }, (message, _, settled, _) =>
            {
                if (!settled)
                {
                    link.DisposeMessage(message, new Accepted(), true);
                }
            }, null);
            link.CompleteAttach(attachContext.Attach, null);
        }

        private void OnRequest(ListenerLink requestLink, Message request)
        {
            var connection = requestLink.Session.Connection;
            var replyTo = request.Properties?.ReplyTo;
            ListenerLink? replyLink = null;
            if (replyLinks.TryGetValue(connection, out var links))
            {
                lock (links)
                {
                    replyLink = links.FirstOrDefault(l => replyTo is not null && string.Equals(l.Address, replyTo, StringComparison.OrdinalIgnoreCase)).Link
                        ?? links.FirstOrDefault(l => string.IsNullOrEmpty(l.Address)).Link;
                }
            }

            var response = Answer(connection, request);
            try
            {
                replyLink?.SendMessage(response);
            }
            catch (Exception ex) when (ex is AmqpException or ObjectDisposedException)
            {
                owner.log.Verbose($"AMQP CBS answer not sent: {ex.Message}");
            }
        }

        private Message Answer(Connection connection, Message request)
        {
            var operation = request.ApplicationProperties?["operation"] as string;
            var audience = request.ApplicationProperties?["name"] as string ?? owner.hub.HostName;
            var token = request.Body as string;
            int status;
            string description;
            if (operation != "put-token" || token is null)
            {
                (status, description) = (400, "Expected a put-token request with the token as the body.");
            }
            else
            {
                HubPermissions permissions = HubPermissions.None;
                var target = Normalize(audience);
                var info = owner.authenticator.Validate(token, target, t =>
                {
                    if (t.PolicyName is not null && owner.hub.Policies.TryGetValue(t.PolicyName, out var policy))
                    {
                        permissions = policy.Permissions;
                        return [policy.PrimaryKey, policy.SecondaryKey];
                    }

                    return [];
                }, out var reason);
                if (info is null || !SasAuthenticator.IsResourcePrefix(owner.hub.HostName, owner.WithoutOwnPort(target)))
                {
                    (status, description) = (401, $"Unauthorized: {(info is null ? reason : "the audience is not this hub")}.");
                }
                else if (!permissions.HasFlag(HubPermissions.ServiceConnect))
                {
                    (status, description) = (401, "The policy lacks the ServiceConnect permission.");
                }
                else
                {
                    owner.authorized.AddOrUpdate(connection, new AuthorizedConnection(info.Expiry));
                    (status, description) = (200, "OK");
                }
            }

            owner.log.Verbose($"AMQP CBS put-token for '{audience}': {status}.");
            var response = new Message
            {
                Properties = new Properties { CorrelationId = request.Properties?.MessageId },
                ApplicationProperties = new ApplicationProperties(),
            };
            response.ApplicationProperties["status-code"] = status;
            response.ApplicationProperties["status-description"] = description;
            return response;
        }

        /// <summary>The link the requests arrive on.</summary>
        private sealed class Requests(CbsNode node) : LinkEndpoint
        {
            public override void OnMessage(MessageContext messageContext)
            {
                messageContext.Complete();
                node.OnRequest(messageContext.Link, messageContext.Message);
            }

            public override void OnFlow(FlowContext flowContext)
            {
            }

            public override void OnDisposition(DispositionContext dispositionContext)
            {
            }
        }

        private static string Normalize(string audience)
        {
            var a = audience;
            var scheme = a.IndexOf("://", StringComparison.Ordinal);
            return scheme >= 0 ? a[(scheme + 3)..] : a;
        }
    }

    private sealed class LinkProcessor(AmqpEndpoint owner) : ILinkProcessor
    {
        public void Process(AttachContext attachContext)
        {
            var link = attachContext.Link;
            if (link.Role && string.Equals((attachContext.Attach.Target as Target)?.Address, "$cbs", StringComparison.Ordinal))
            {
                owner.cbs.AttachRequests(attachContext);
                return;
            }

            if (!link.Role && string.Equals((attachContext.Attach.Source as Source)?.Address, "$cbs", StringComparison.Ordinal))
            {
                owner.cbs.AttachReplies(attachContext);
                return;
            }

            if (link.Role)
            {
                // The client sends: only C2D.
                var address = ((attachContext.Attach.Target as Target)?.Address ?? "").TrimStart('/');
                if (!string.Equals(address, "messages/devicebound", StringComparison.OrdinalIgnoreCase))
                {
                    attachContext.Complete(new Error(ErrorCode.NotFound) { Description = $"No node '{address}' to send to." });
                }
                else if (!owner.IsAuthorized(link))
                {
                    attachContext.Complete(new Error(ErrorCode.UnauthorizedAccess) { Description = "Put a service token on $cbs first." });
                }
                else
                {
                    attachContext.Complete(new CloudToDeviceSink(owner), 100);
                }

                return;
            }

            var source = attachContext.Attach.Source as Source;
            var sourceAddress = (source?.Address ?? "").TrimStart('/');
            var segments = sourceAddress.Split('/');
            if (!owner.IsAuthorized(link))
            {
                attachContext.Complete(new Error(ErrorCode.UnauthorizedAccess) { Description = "Put a service token on $cbs first." });
            }
            else if (sourceAddress.StartsWith("messages/events", StringComparison.OrdinalIgnoreCase))
            {
                // The hub does not serve events itself: it redirects to its Event Hub-compatible entity.
                var rest = sourceAddress["messages/events".Length..];
                var address = $"amqps://{owner.hub.HostName}:{owner.Port.ToString(CultureInfo.InvariantCulture)}/{owner.hub.EventHubName}{rest}";
                owner.log.Verbose($"AMQP attach to '{sourceAddress}' redirected to '{address}'.");
                attachContext.Complete(new Error(ErrorCode.LinkRedirect)
                {
                    Description = "Read events from the Event Hub-compatible endpoint.",
                    Info = new Fields
                    {
                        [new Symbol("hostname")] = owner.hub.HostName,
                        [new Symbol("network-host")] = owner.hub.HostName,
                        [new Symbol("port")] = owner.Port,
                        [new Symbol("address")] = address,
                    },
                });
            }
            else if (segments is [var entity, var groups, _, var partitions, var partition]
                && string.Equals(entity, owner.hub.EventHubName, StringComparison.OrdinalIgnoreCase)
                && string.Equals(groups, "ConsumerGroups", StringComparison.OrdinalIgnoreCase)
                && string.Equals(partitions, "Partitions", StringComparison.OrdinalIgnoreCase))
            {
                if (!int.TryParse(partition, NumberStyles.None, CultureInfo.InvariantCulture, out var index) || index >= owner.hub.PartitionCount)
                {
                    attachContext.Complete(new Error(ErrorCode.NotFound) { Description = $"No partition '{partition}': there are {owner.hub.PartitionCount}." });
                }
                else
                {
                    _ = new TelemetrySource(owner, attachContext, index, StartFrom(source));
                }
            }
            else if (string.Equals(sourceAddress, "messages/servicebound/feedback", StringComparison.OrdinalIgnoreCase))
            {
                FeedbackSource.Attach(owner, attachContext);
            }
            else
            {
                attachContext.Complete(new Error(ErrorCode.NotFound) { Description = $"No node '{sourceAddress}' to receive from." });
            }
        }

        /// <summary>Reads an Event Hubs start filter (<c>amqp.annotation.x-opt-offset &gt; 'n'</c> or <c>x-opt-enqueued-time</c>).</summary>
        private static (long Sequence, DateTime? After) StartFrom(Source? source)
        {
            if (source?.FilterSet is null)
            {
                return (1, null);
            }

            foreach (var value in source.FilterSet.Values)
            {
                var text = (value as DescribedValue)?.Value as string ?? value?.ToString() ?? "";
                var quote = text.IndexOf('\'', StringComparison.Ordinal);
                var end = quote < 0 ? -1 : text.IndexOf('\'', quote + 1);
                if (quote < 0 || end < 0)
                {
                    continue;
                }

                var literal = text[(quote + 1)..end];
                var inclusive = text.Contains(">=", StringComparison.Ordinal);
                if (text.Contains("x-opt-offset", StringComparison.Ordinal) && long.TryParse(literal, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var offset))
                {
                    return (offset < 0 ? 1 : inclusive ? offset : offset + 1, null);
                }

                if (text.Contains("x-opt-enqueued-time", StringComparison.Ordinal) && long.TryParse(literal, NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
                {
                    return (1, DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime);
                }
            }

            return (1, null);
        }
    }

    /// <summary>Receives C2D messages addressed <c>/devices/{id}/messages/devicebound</c> and queues them.</summary>
    private sealed class CloudToDeviceSink(AmqpEndpoint owner) : LinkEndpoint
    {
        public override void OnMessage(MessageContext messageContext)
        {
            var message = messageContext.Message;
            var to = message.Properties?.To ?? "";
            var parts = to.Trim('/').Split('/');
            if (parts.Length != 4 || parts[0] != "devices" || parts[2] != "messages" || !string.Equals(parts[3], "devicebound", StringComparison.OrdinalIgnoreCase))
            {
                messageContext.Complete(new Error(ErrorCode.InvalidField) { Description = "The 'to' property must be /devices/{deviceId}/messages/devicebound." });
                return;
            }

            var body = message.Body switch
            {
                byte[] bytes => bytes,
                string text => Encoding.UTF8.GetBytes(text),
                null => [],
                _ => Encoding.UTF8.GetBytes(message.Body.ToString() ?? ""),
            };
            var properties = new Dictionary<string, string>(StringComparer.Ordinal);
            string? ack = null;
            if (message.ApplicationProperties is not null)
            {
                foreach (var (key, value) in message.ApplicationProperties.Map)
                {
                    var name = key.ToString() ?? "";
                    if (name == "iothub-ack")
                    {
                        ack = value?.ToString();
                    }
                    else
                    {
                        properties[name] = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
                    }
                }
            }

            var p = message.Properties!;
            var expiry = p.AbsoluteExpiryTime > DateTime.MinValue.AddYears(1) ? p.AbsoluteExpiryTime.ToUniversalTime() : (DateTime?)null;
            try
            {
                owner.Tier?.Take(Tiers.TierOperation.CloudToDevice);
                owner.hub.EnqueueCloudToDevice(Uri.UnescapeDataString(parts[1]), body, properties, p.MessageId, p.CorrelationId,
                    p.UserId is null ? null : Encoding.UTF8.GetString(p.UserId), p.ContentType, p.ContentEncoding, ack, expiry);
                messageContext.Complete();
            }
            catch (HubError error)
            {
                Amqp.Types.Symbol condition = error.Status switch
                {
                    404 => ErrorCode.NotFound,
                    429 => new Amqp.Types.Symbol("com.microsoft:server-busy"),
                    403 when error.ErrorCode == 403010 => ErrorCode.NotAllowed,
                    403 => ErrorCode.ResourceLimitExceeded,
                    413 => ErrorCode.MessageSizeExceeded,
                    _ => ErrorCode.InvalidField,
                };
                messageContext.Complete(new Error(condition) { Description = $"ErrorCode:{error.Code};{error.Message}" });
            }
        }

        public override void OnFlow(FlowContext flowContext)
        {
        }

        public override void OnDisposition(DispositionContext dispositionContext)
        {
        }
    }

    /// <summary>Sends telemetry to a receiver link as the Event Hub-compatible endpoint does, as far as credit allows.</summary>
    private sealed class TelemetrySource : LinkEndpoint
    {
        private readonly AmqpEndpoint owner;
        private readonly ListenerLink link;
        private readonly CancellationTokenSource closed = new();
        private readonly SemaphoreSlim creditArrived = new(0);
        private readonly DateTime? after;
        private readonly int partition;
        private int credit;
        private long next;

        public TelemetrySource(AmqpEndpoint owner, AttachContext attachContext, int partition, (long Sequence, DateTime? After) start)
        {
            this.owner = owner;
            this.partition = partition;
            link = attachContext.Link;
            next = start.Sequence;
            after = start.After;
            attachContext.Complete(this, 0);
            _ = Task.Run(PumpAsync);
        }

        public override void OnFlow(FlowContext flowContext)
        {
            Volatile.Write(ref credit, flowContext.Messages);
            creditArrived.Release();
        }

        public override void OnDisposition(DispositionContext dispositionContext) => dispositionContext.Complete();

        public override void OnLinkClosed(ListenerLink link, Error error)
        {
            closed.Cancel();
        }

        private async Task PumpAsync()
        {
            try
            {
                while (!closed.IsCancellationRequested)
                {
                    var available = Volatile.Read(ref credit);
                    if (available <= 0)
                    {
                        await creditArrived.WaitAsync(TimeSpan.FromSeconds(1), closed.Token).ConfigureAwait(false);
                        continue;
                    }

                    var batch = await owner.hub.Telemetry.ReadAsync(next, Math.Min(available, 100), null, TimeSpan.FromSeconds(1), closed.Token,
                        m => owner.hub.PartitionOf(m.DeviceId) == partition).ConfigureAwait(false);
                    foreach (var telemetry in batch)
                    {
                        next = telemetry.SequenceNumber + 1;
                        if (after is { } t && telemetry.EnqueuedTimeUtc <= t)
                        {
                            continue;
                        }

                        link.SendMessage(ToAmqp(telemetry, partition));
                        Interlocked.Decrement(ref credit);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (AmqpException ex)
            {
                owner.log.Verbose($"AMQP telemetry link ended: {ex.Error?.Condition}.");
            }
            catch (ObjectDisposedException)
            {
            }
        }

        private static Message ToAmqp(TelemetryMessage telemetry, int partition)
        {
            var message = new Message { BodySection = new Data { Binary = telemetry.Body } };
            var system = telemetry.SystemProperties;
            message.Properties = new Properties
            {
                MessageId = system.GetValueOrDefault("message-id"),
                CorrelationId = system.GetValueOrDefault("correlation-id"),
                ContentType = system.GetValueOrDefault("content-type"),
                ContentEncoding = system.GetValueOrDefault("content-encoding"),
            };
            if (system.TryGetValue("user-id", out var userId))
            {
                message.Properties.UserId = Encoding.UTF8.GetBytes(userId);
            }

            message.MessageAnnotations = new MessageAnnotations();
            message.MessageAnnotations[new Symbol("x-opt-sequence-number")] = telemetry.PartitionSequenceNumber;
            message.MessageAnnotations[new Symbol("x-opt-offset")] = telemetry.SequenceNumber.ToString(CultureInfo.InvariantCulture);
            message.MessageAnnotations[new Symbol("x-opt-enqueued-time")] = telemetry.EnqueuedTimeUtc;
            message.MessageAnnotations[new Symbol("iothub-connection-device-id")] = telemetry.DeviceId;
            if (telemetry.ModuleId is not null)
            {
                message.MessageAnnotations[new Symbol("iothub-connection-module-id")] = telemetry.ModuleId;
            }

            message.MessageAnnotations[new Symbol("iothub-message-source")] = "Telemetry";
            message.MessageAnnotations[new Symbol("x-opt-partition-id")] = partition.ToString(CultureInfo.InvariantCulture);
            if (telemetry.SystemProperties.TryGetValue("iothub-creation-time-utc", out var created))
            {
                message.MessageAnnotations[new Symbol("iothub-creation-time-utc")] = created;
            }
            message.ApplicationProperties = new ApplicationProperties();
            foreach (var (name, value) in telemetry.Properties)
            {
                message.ApplicationProperties[name] = value;
            }

            return message;
        }
    }

    /// <summary>
    /// The feedback queue as a sender link: one message per batch of records (a JSON array, as the hub sends), kept
    /// unsettled until the reader accepts it; released, rejected or left unsettled when the link closes, its records go
    /// back to the queue for the next reader.
    /// </summary>
    private sealed class FeedbackSource
    {
        private readonly AmqpEndpoint owner;
        private readonly ListenerLink link;
        private readonly CancellationTokenSource closed = new();
        private readonly SemaphoreSlim creditArrived = new(0);
        private readonly Dictionary<Message, List<CloudToDeviceFeedback>> outstanding = [];
        private int credit;

        private FeedbackSource(AmqpEndpoint owner, ListenerLink link)
        {
            this.owner = owner;
            this.link = link;
        }

        public static void Attach(AmqpEndpoint owner, AttachContext attachContext)
        {
            var source = new FeedbackSource(owner, attachContext.Link);
            var link = attachContext.Link;
            // The low-level sender callbacks, since the disposition's outcome decides whether records are done.
            link.InitializeSender((messages, _, _) => source.OnFlow(messages), (message, state, _, _) => source.OnDisposition(message, state), source);
            link.Closed += (_, _) => source.OnClosed();
            link.CompleteAttach(attachContext.Attach, null);
            _ = Task.Run(source.PumpAsync);
        }

        private void OnFlow(int messages)
        {
            Volatile.Write(ref credit, messages);
            creditArrived.Release();
        }

        private void OnDisposition(Message message, DeliveryState? state)
        {
            List<CloudToDeviceFeedback>? records;
            lock (outstanding)
            {
                if (!outstanding.Remove(message, out records))
                {
                    return;
                }
            }

            if (state is not Accepted)
            {
                owner.hub.ReturnFeedback(records);
            }

            link.DisposeMessage(message, new Accepted(), true);
        }

        private void OnClosed()
        {
            closed.Cancel();
            List<CloudToDeviceFeedback> back;
            lock (outstanding)
            {
                back = outstanding.Values.SelectMany(r => r).ToList();
                outstanding.Clear();
            }

            owner.hub.ReturnFeedback(back);
        }

        private async Task PumpAsync()
        {
            try
            {
                while (!closed.IsCancellationRequested)
                {
                    if (Volatile.Read(ref credit) <= 0)
                    {
                        await creditArrived.WaitAsync(TimeSpan.FromSeconds(1), closed.Token).ConfigureAwait(false);
                        continue;
                    }

                    var records = await owner.hub.TakeFeedbackAsync(100, TimeSpan.FromSeconds(1), closed.Token).ConfigureAwait(false);
                    if (records.Count == 0)
                    {
                        continue;
                    }

                    if (closed.IsCancellationRequested)
                    {
                        owner.hub.ReturnFeedback(records);
                        break;
                    }

                    var message = ToAmqp(records, owner.hub.HostName);
                    lock (outstanding)
                    {
                        outstanding[message] = records;
                    }

                    try
                    {
                        link.SendMessage(message);
                        Interlocked.Decrement(ref credit);
                    }
                    catch (Exception ex) when (ex is AmqpException or ObjectDisposedException)
                    {
                        OnClosed();
                        break;
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        private static Message ToAmqp(List<CloudToDeviceFeedback> records, string hostName)
        {
            var json = new System.Text.Json.Nodes.JsonArray(records.Select(r => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject
            {
                ["originalMessageId"] = r.OriginalMessageId,
                ["description"] = r.StatusCode,
                ["statusCode"] = r.StatusCode,
                ["deviceId"] = r.DeviceId,
                ["deviceGenerationId"] = "",
                ["enqueuedTimeUtc"] = r.EnqueuedTimeUtc.ToString("O", CultureInfo.InvariantCulture),
            }).ToArray());
            return new Message
            {
                BodySection = new Data { Binary = Encoding.UTF8.GetBytes(json.ToJsonString()) },
                Properties = new Properties
                {
                    MessageId = Guid.NewGuid().ToString(),
                    ContentType = "application/vnd.microsoft.iothub.feedback.json",
                    UserId = Encoding.UTF8.GetBytes(hostName.Split('.')[0]),
                },
            };
        }
    }

    private sealed record AuthorizedConnection(DateTimeOffset Expires);
}
