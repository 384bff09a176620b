using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace IoTHubMqtt.Esp32.Simulator;

/// <summary>Serves a simulator on 127.0.0.1 (an ephemeral TCP port): <c>socket://127.0.0.1:PORT</c>.</summary>
public sealed class SimulatorServer : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource stop = new();
    private readonly Task acceptLoop;
    private readonly List<Task> sessions = [];

    public SimulatorServer(Esp32Simulator simulator, bool rfc2217 = false)
    {
        Simulator = simulator ?? throw new ArgumentNullException(nameof(simulator));
        Rfc2217 = rfc2217;
        listener.Start();
        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        acceptLoop = Task.Run(AcceptAsync);
    }

    public SimulatorServer(SimulatorOptions? options = null)
        : this(new Esp32Simulator(options))
    {
    }

    public Esp32Simulator Simulator { get; }

    public int Port { get; }

    /// <summary>Serve RFC 2217 (Telnet COM-PORT-OPTION, with DTR/RTS) instead of a raw byte stream.</summary>
    public bool Rfc2217 { get; }

    /// <summary>The last RFC 2217 connection's stream (its host-set baud rate).</summary>
    public Rfc2217Stream? LastRfc2217Stream { get; private set; }

    public string Url => Rfc2217 ? $"rfc2217://127.0.0.1:{Port}" : $"socket://127.0.0.1:{Port}";

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        listener.Stop();
        try
        {
            await acceptLoop.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            Task[] running;
            lock (sessions)
            {
                running = [.. sessions];
            }

            await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }

        stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            client.NoDelay = true;
            var session = Task.Run(async () =>
            {
                using (client)
                {
                    Stream stream = client.GetStream();
                    if (Rfc2217)
                    {
                        stream = LastRfc2217Stream = new Rfc2217Stream(stream);
                    }

                    await Simulator.ServeAsync(stream, stop.Token).ConfigureAwait(false);
                }
            });
            lock (sessions)
            {
                sessions.Add(session);
            }
        }
    }
}

/// <summary>
/// A pseudo-terminal wired to a simulator with <c>socat</c>, so the host opens a real serial device
/// (System.IO.Ports) and the bytes reach the simulator. Throws when socat is not installed.
/// </summary>
public sealed class PtyBridge : IDisposable
{
    private readonly Process process;

    public PtyBridge(SimulatorServer server)
    {
        ArgumentNullException.ThrowIfNull(server);
        DevicePath = Path.Combine(Path.GetTempPath(), $"esp32sim-{Guid.NewGuid():N}");
        var start = new ProcessStartInfo("socat", ["-d", "-d", $"pty,raw,echo=0,link={DevicePath}", $"tcp:127.0.0.1:{server.Port}"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("socat did not start.");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("socat is required for the pty tests (apt-get install socat).", ex);
        }

        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!File.Exists(DevicePath))
        {
            if (DateTime.UtcNow > deadline || process.HasExited)
            {
                Dispose();
                throw new InvalidOperationException($"socat did not create {DevicePath}.");
            }

            Thread.Sleep(20);
        }
    }

    /// <summary>The serial device to open (a symlink to /dev/pts/N).</summary>
    public string DevicePath { get; }

    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        process.Dispose();
        try
        {
            File.Delete(DevicePath);
        }
        catch (IOException)
        {
        }
    }
}
