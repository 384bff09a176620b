using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Threading.Channels;
using Amqp;
using Amqp.Framing;
using Amqp.Listener;
using Amqp.Types;
using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Emulator.Transport;

namespace IoTHubMqtt.Emulator.Service;

/// <summary>
/// The hub's service-side AMQP endpoint (amqps, like port 5671) and, on the same port, its Event Hub-compatible
/// ("built-in") endpoint. The hub's nodes: CBS token authorization on <c>$cbs</c>, C2D send on
/// <c>/messages/devicebound</c>, C2D delivery feedback on <c>/messages/servicebound/feedback</c>, and
/// <c>messages/events…</c>, which redirects (<c>amqp:link:redirect</c>) as the hub does to its Event Hub-compatible
/// entity. The entity: <c>{eventHub}/ConsumerGroups/{cg}/Partitions/{p}</c> with the Event Hubs start filters and owner
/// levels, and <c>$management</c> (also <c>{eventHub}/$management</c>) answering entity and partition reads.
/// Connections are authorized by CBS put-token or by a SASL PLAIN login. Addresses may be absolute
/// (<c>amqps://host/…</c>). Sequence numbers count per partition, as Event Hubs does; offsets are the emulator's
/// hub-wide sequence numbers (increasing within each partition, with gaps).
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-amqp-support and
/// https://learn.microsoft.com/azure/service-bus-messaging/service-bus-amqp-protocol-guide
/// </summary>
internal sealed partial class AmqpEndpoint : IDisposable
{
    /// <summary>How long a client has for its TLS handshake and protocol header, and then for its SASL exchange.</summary>
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(30);

    private readonly ContainerHost host;
    private readonly HubState hub;
    private readonly SasAuthenticator authenticator;
    private readonly EmulatorLog log;
    private readonly TlsAcceptor tls;
    private readonly SocketListener listener;
    private readonly AcceptedTransports saslTransports = new();
    private readonly AcceptedTransports plainTransports = new();
    private readonly RequestNode cbs;
    private readonly RequestNode management;
    private readonly ConsumerRegistry consumers = new();
    private readonly List<Socket> sockets = [];

    /// <summary>
    /// One TCP port serves both ways the hub is reached: after TLS, a client that starts with the SASL header (protocol
    /// id 3; AMQPNetLite, the .NET SDKs, rhea with a user name) goes to a listener that negotiates SASL ANONYMOUS,
    /// MSSBCBS or PLAIN, and one that starts directly with the AMQP header (protocol id 0; the Node.js IoT Hub SDK) goes to a
    /// listener without SASL. The endpoint accepts and routes the sockets itself and hands each stream to its AMQPNetLite
    /// listener through a custom transport.
    /// </summary>
    public AmqpEndpoint(System.Net.IPAddress address, int port, TlsAcceptor tls, HubState hub, SasAuthenticator authenticator, EmulatorLog log)
    {
        this.hub = hub;
        this.authenticator = authenticator;
        this.log = log;
        this.tls = tls;
        listener = new SocketListener("AMQP", address, port, 512, RouteAsync, log);

        // Listening from here on, so port 0 takes the port the system chooses and reports it, with no window in which
        // another program could take a port probed as free.
        Port = listener.Bind();

        const string saslScheme = "iothub-emulator-sasl";
        const string plainScheme = "iothub-emulator-plain";
        host = new ContainerHost([
            new Address(address.ToString(), Port, null, null, "/", saslScheme),
            new Address(address.ToString(), Port, null, null, "/", plainScheme),
        ]);
        host.CustomTransports[saslScheme] = saslTransports;
        host.CustomTransports[plainScheme] = plainTransports;
        host.Listeners[0].SASL.EnableAnonymousMechanism = true;
        host.Listeners[0].SASL.EnableMechanism(new Symbol("PLAIN"), new PlainLogin(this));
        host.Listeners[0].SASL.EnableMechanism(new Symbol("MSSBCBS"), new CbsLater());
        cbs = new RequestNode(this, "$cbs", AnswerCbs);
        management = new RequestNode(this, "$management", AnswerManagement);
        host.RegisterLinkProcessor(new LinkProcessor(this));
    }

    public int Port { get; }

    /// <summary>The emulated tier's throttles (cloud-to-device sends), or null.</summary>
    public Tiers.TierThrottles? Tier { get; set; }

    public void Start()
    {
        host.Open();
        listener.Start();
    }

    public void Dispose()
    {
        listener.Dispose();
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

    /// <summary>Does the TLS handshake, reads the client's protocol header and hands the stream to the listener for it.</summary>
    private async Task RouteAsync(Socket socket, CancellationToken listenerStopping)
    {
        lock (sockets)
        {
            sockets.RemoveAll(s => s.SafeHandle.IsClosed);
            sockets.Add(socket);
        }

        var stream = await tls.AcceptAsync(new NetworkStream(socket, ownsSocket: true), socket.RemoteEndPoint, TlsProfile.Amqp, listenerStopping).ConfigureAwait(false);
        if (stream is null)
        {
            return;
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(listenerStopping);
            timeout.CancelAfter(HandshakeTimeout);
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
    /// An address as the endpoint's nodes know it: without a scheme and host (<c>amqps://host:port/</c>, <c>sb://host/</c>)
    /// and without the leading slash.
    /// </summary>
    internal static string NodeOf(string? address)
    {
        var a = address ?? "";
        var scheme = a.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            var path = a.IndexOf('/', scheme + 3);
            a = path < 0 ? "" : a[path..];
        }

        return a.TrimStart('/');
    }

    /// <summary>Sends links to the node their address names.</summary>
    private sealed class LinkProcessor(AmqpEndpoint owner) : ILinkProcessor
    {
        public void Process(AttachContext attachContext)
        {
            var link = attachContext.Link;
            var address = link.Role ? (attachContext.Attach.Target as Target)?.Address : (attachContext.Attach.Source as Source)?.Address;
            var node = NodeOf(address);
            var entity = owner.hub.EventHubName;
            if (node.Equals("$cbs", StringComparison.Ordinal))
            {
                owner.cbs.Attach(attachContext);
                return;
            }

            if (node.Equals("$management", StringComparison.Ordinal) || node.Equals(entity + "/$management", StringComparison.OrdinalIgnoreCase))
            {
                owner.management.Attach(attachContext);
                return;
            }

            if (link.Role)
            {
                // The client sends: only C2D.
                if (!string.Equals(node, "messages/devicebound", StringComparison.OrdinalIgnoreCase))
                {
                    attachContext.Complete(new Error(ErrorCode.NotFound) { Description = $"No node '{node}' to send to." });
                }
                else if (!owner.IsAuthorized(link, node))
                {
                    attachContext.Complete(new Error(ErrorCode.UnauthorizedAccess) { Description = "Put a service token on $cbs first." });
                }
                else
                {
                    attachContext.Complete(new CloudToDeviceSink(owner), 100);
                }

                return;
            }

            if (!owner.IsAuthorized(link, node))
            {
                attachContext.Complete(new Error(ErrorCode.UnauthorizedAccess) { Description = $"Put a token for '{owner.hub.HostName}/{node}' on $cbs first." });
            }
            else if (node.StartsWith("messages/events", StringComparison.OrdinalIgnoreCase))
            {
                owner.Redirect(attachContext, node["messages/events".Length..]);
            }
            else if (node.StartsWith(entity + "/", StringComparison.OrdinalIgnoreCase))
            {
                owner.AttachConsumer(attachContext, node);
            }
            else if (string.Equals(node, "messages/servicebound/feedback", StringComparison.OrdinalIgnoreCase))
            {
                FeedbackSource.Attach(owner, attachContext);
            }
            else
            {
                attachContext.Complete(new Error(ErrorCode.NotFound) { Description = $"No node '{node}' to receive from." });
            }
        }
    }
}
