using System.Net;
using System.Net.Sockets;

namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// The TCP side of every listener: binds (port 0 takes the port the system chooses, reported by <see cref="Port"/>),
/// accepts until stopped, sets TCP_NODELAY (small request/response exchanges would otherwise wait on the peer's delayed
/// ACK, about 40 ms on Linux) and hands each socket to the handler on the thread pool. A failed accept is logged and the
/// loop goes on; one connection's failure never takes the listener down.
/// </summary>
internal sealed class SocketListener : IDisposable
{
    private readonly TcpListener listener;
    private readonly string name;
    private readonly int backlog;
    private readonly Func<Socket, CancellationToken, Task> handler;
    private readonly EmulatorLog log;
    private readonly CancellationTokenSource stopping = new();
    private Task? acceptLoop;
    private bool bound;

    public SocketListener(string name, IPAddress address, int port, int backlog, Func<Socket, CancellationToken, Task> handler, EmulatorLog log, bool reuseAddress = false)
    {
        this.name = name;
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
            ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.Listener.RunAsync(state.Socket, state.Token), (Listener: this, Socket: socket, Token: token), preferLocal: false);
        }
    }

    private async Task RunAsync(Socket socket, CancellationToken token)
    {
        var remote = socket.RemoteEndPoint;
        try
        {
            await handler(socket, token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
            log.Verbose($"{name}: connection from {remote} ended: {ex.GetType().Name}.");
            socket.Dispose();
        }
#pragma warning disable CA1031 // one connection's failure must never take the listener down
        catch (Exception ex)
#pragma warning restore CA1031
        {
            log.Warning($"{name}: connection from {remote} failed: {ex.GetType().Name}: {ex.Message}");
            socket.Dispose();
        }
    }
}
