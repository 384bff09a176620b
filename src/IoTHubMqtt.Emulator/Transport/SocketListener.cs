using System.Net;
using System.Net.Sockets;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// The TCP side of every listener: binds (port 0 takes the port the system chooses, reported by <see cref="Port"/>),
/// accepts until stopped, sets TCP_NODELAY (small request/response exchanges would otherwise wait on the peer's delayed
/// ACK, about 40 ms on Linux) and hands each socket to the handler on the thread pool. A failed accept is logged and the
/// loop goes on; one connection's failure never takes the listener down.
/// <para>
/// A handler that reports its own failures (<see cref="ConnectionFailed"/>) is started and left to run: the listener
/// keeps no waiting state of its own for each of the thousands of connections it may hold at once.
/// </para>
/// </summary>
internal sealed class SocketListener : IDisposable
{
    private readonly TcpListener listener;
    private readonly string name;
    private readonly int backlog;
    private readonly Func<Socket, CancellationToken, Task> handler;
    private readonly bool handlerReportsFailures;
    private readonly EmulatorLog log;
    private readonly CancellationTokenSource stopping = new();
    private Task? acceptLoop;
    private bool bound;

    /// <param name="handlerReportsFailures">The handler catches every exception and passes it to <see cref="ConnectionFailed"/>
    /// (its task never faults), so the listener does not wait on it.</param>
    public SocketListener(string name, IPAddress address, int port, int backlog, Func<Socket, CancellationToken, Task> handler, EmulatorLog log, bool reuseAddress = false, bool handlerReportsFailures = false)
    {
        this.name = name;
        this.handlerReportsFailures = handlerReportsFailures;
        this.backlog = backlog;
        this.handler = handler;
        this.log = log;
        listener = new TcpListener(address, port);
        if (address.Equals(IPAddress.IPv6Any))
        {
            listener.Server.DualMode = true;
        }
        else if (reuseAddress && !address.Equals(IPAddress.Any))
        {
            listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        }
    }

    /// <summary>The bound port (valid after <see cref="Bind"/> or <see cref="Start"/>).</summary>
    public int Port { get; private set; }

    public EndPoint LocalEndPoint => listener.LocalEndpoint;

    /// <summary>Listens (connections wait in the backlog until <see cref="Start"/>) and returns the port.</summary>
    public int Bind()
    {
        if (!bound)
        {
            listener.Start(backlog);
            Port = ((IPEndPoint)listener.LocalEndpoint).Port;
            bound = true;
        }

        return Port;
    }

    /// <summary>Starts taking connections.</summary>
    public void Start()
    {
        Bind();

        // The token is taken here, not in the loop: Dispose may run before the loop's first step.
        var token = stopping.Token;
        acceptLoop = Task.Run(() => AcceptLoopAsync(token));
    }

    public async Task StopAsync()
    {
        if (stopping.IsCancellationRequested)
        {
            return;
        }

        await stopping.CancelAsync().ConfigureAwait(false);
        listener.Stop();
        if (acceptLoop is not null)
        {
            await acceptLoop.ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        stopping.Cancel();
        listener.Stop();
        stopping.Dispose();
    }

    private async Task AcceptLoopAsync(CancellationToken token)
    {
        while (!token.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (InvalidOperationException) when (token.IsCancellationRequested)
            {
                return; // stopped between the loop's check and the accept: the listener is no longer listening
            }
            catch (SocketException ex)
            {
                if (token.IsCancellationRequested)
                {
                    return;
                }

                log.Warning($"{name}: accept failed on port {Port}: {ex.SocketErrorCode}.");
                continue;
            }

            socket.NoDelay = true;
            // Queued as it is (no Task.Run wrapper and closure kept for the connection's life: thousands are held at once).
            ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.Listener.handlerReportsFailures ? state.Listener.handler(state.Socket, state.Token) : state.Listener.RunAsync(state.Socket, state.Token), (Listener: this, Socket: socket, Token: token), preferLocal: false);
        }
    }

    /// <summary>Logs how a connection's handler failed (an ended connection verbose, anything else as a warning) and closes its socket.</summary>
    public void ConnectionFailed(Socket socket, EndPoint? remote, Exception ex)
    {
        if (ex is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
            log.Verbose($"{name}: connection from {remote} ended: {ex.GetType().Name}.");
        }
        else
        {
            log.Warning($"{name}: connection from {remote} failed: {ex.GetType().Name}: {ex.Message}");
        }

        socket.Dispose();
    }

    private async Task RunAsync(Socket socket, CancellationToken token)
    {
        var remote = socket.RemoteEndPoint;
        try
        {
            await handler(socket, token).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // one connection's failure must never take the listener down
        catch (Exception ex)
#pragma warning restore CA1031
        {
            ConnectionFailed(socket, remote, ex);
        }
    }
}
