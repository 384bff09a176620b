using System.Net;
using System.Net.Sockets;

namespace IoTHubMqtt.Esp32.Simulator;

/// <summary>How a simulator is reached.</summary>
public enum SimulatorTransport
{
    /// <summary>A raw byte stream on a loopback TCP port: <c>socket://127.0.0.1:PORT</c>.</summary>
    Tcp,

    /// <summary>RFC 2217 (Telnet COM-PORT-OPTION, with DTR/RTS and the host's baud rate) on a loopback TCP port.</summary>
    Rfc2217,

    /// <summary>A Linux pseudo-terminal (/dev/pts/N) the host opens as a serial port; the host's baud rate is read from it.</summary>
    Pty,
}

/// <summary>
/// Serves a simulator on 127.0.0.1 (an ephemeral TCP port: <c>socket://127.0.0.1:PORT</c> or <c>rfc2217://…</c>) or, on
/// Linux, on a pseudo-terminal made in this process (<c>/dev/pts/N</c>, or a symlink to it).
/// </summary>
public sealed class SimulatorServer : IAsyncDisposable
{
    private readonly TcpListener? listener;
    private readonly PseudoTerminal? pty;
    private readonly string? ptyLink;
    private readonly CancellationTokenSource stop = new();
    private readonly Task acceptLoop;
    private readonly List<Task> sessions = [];

    public SimulatorServer(Esp32Simulator simulator, bool rfc2217 = false)
        : this(simulator, rfc2217 ? SimulatorTransport.Rfc2217 : SimulatorTransport.Tcp)
    {
    }

    /// <summary>
    /// Serves <paramref name="simulator"/> over <paramref name="transport"/>. For <see cref="SimulatorTransport.Pty"/>,
    /// <paramref name="devicePath"/> names a symlink to make to the pty (a stable name, like socat's <c>link=</c>); the pty
    /// is Linux-only (PlatformNotSupportedException elsewhere, with the reason).
    /// </summary>
    public SimulatorServer(Esp32Simulator simulator, SimulatorTransport transport, string? devicePath = null)
    {
        Simulator = simulator ?? throw new ArgumentNullException(nameof(simulator));
        Transport = transport;
        if (transport != SimulatorTransport.Pty)
        {
            if (devicePath is not null)
            {
                throw new ArgumentException("A device path is for a pty only.", nameof(devicePath));
            }

            listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            TcpPort = ((IPEndPoint)listener.LocalEndpoint).Port;
            acceptLoop = AcceptAsync(); // its first accept is under way before the constructor returns
            return;
        }

        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException(PtyUnsupportedReason);
        }

        pty = PseudoTerminal.Open();
        try
        {
            if (devicePath is not null)
            {
                File.CreateSymbolicLink(devicePath, pty.SlavePath);
                ptyLink = devicePath;
            }
        }
        catch
        {
            pty.Dispose();
            throw;
        }

        acceptLoop = Task.Factory.StartNew(ServePtyAsync, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>Why this computer cannot serve a simulator on a pty, or null when it can.</summary>
    public static string? PtyUnsupportedReason => PseudoTerminal.UnsupportedReason;

    public SimulatorServer(SimulatorOptions? options = null)
        : this(new Esp32Simulator(options))
    {
    }

    public Esp32Simulator Simulator { get; }

    /// <summary>How the simulator is reached.</summary>
    public SimulatorTransport Transport { get; }

    /// <summary>The loopback TCP port the simulator listens on (0 on a pty).</summary>
    public int TcpPort { get; }

    /// <summary>What to pass to -Port: socket://127.0.0.1:N, rfc2217://127.0.0.1:N, or the pty's device path.</summary>
    public string Port => Url;

    /// <summary>Serve RFC 2217 (Telnet COM-PORT-OPTION, with DTR/RTS) instead of a raw byte stream.</summary>
    public bool Rfc2217 => Transport == SimulatorTransport.Rfc2217;

    /// <summary>The last RFC 2217 connection's stream (its host-set baud rate).</summary>
    public Rfc2217Stream? LastRfc2217Stream { get; private set; }

    /// <summary>The pty's slave device (/dev/pts/N), or null over TCP.</summary>
    public string? PtyPath => pty?.SlavePath;

    /// <summary>The baud rate the host's end of the line runs at now: set on the pty, or asked for over RFC 2217 (0 = unknown).</summary>
    public int HostBaudRate => pty?.HostBaudRate ?? LastRfc2217Stream?.HostBaudRate ?? 0;

    /// <summary>Host sessions served: TCP connections, or openings of the pty by the host.</summary>
    public int Sessions { get; private set; }

    public string Url => Transport switch
    {
        SimulatorTransport.Rfc2217 => $"rfc2217://127.0.0.1:{TcpPort}",
        SimulatorTransport.Pty => ptyLink ?? pty!.SlavePath,
        _ => $"socket://127.0.0.1:{TcpPort}",
    };

    /// <summary>The simulated chip.</summary>
    public SimulatedChipType Chip => Simulator.Options.Chip;

    /// <summary>The simulated flash size in bytes.</summary>
    public int FlashSize => Simulator.Flash.Length;

    /// <summary>True while an uploaded flasher stub runs on the simulated chip.</summary>
    public bool StubRunning => Simulator.StubRunning;

    /// <summary>False once stopped.</summary>
    public bool IsRunning => !stop.IsCancellationRequested;

    /// <summary>A copy of <paramref name="length"/> bytes of the simulated flash from <paramref name="offset"/>, for assertions.</summary>
    public byte[] ReadFlash(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > Simulator.Flash.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"0x{offset:X} + {length} bytes is outside the {Simulator.Flash.Length}-byte flash.");
        }

        lock (Simulator.Flash)
        {
            return Simulator.Flash.AsSpan((int)offset, length).ToArray();
        }
    }

    /// <summary>Writes the whole simulated flash to a file (a flash dump, as esptool's read_flash 0 ALL would).</summary>
    public void SaveFlash(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        lock (Simulator.Flash)
        {
            File.WriteAllBytes(path, Simulator.Flash);
        }
    }

    /// <summary>Loads bytes into the simulated flash at <paramref name="offset"/>, as if flashed earlier (a board's previous state).</summary>
    public void LoadFlash(string path, long offset = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var data = File.ReadAllBytes(path);
        if (offset < 0 || offset + data.Length > Simulator.Flash.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"'{path}' ({data.Length} bytes) at 0x{offset:X} does not fit the {Simulator.Flash.Length}-byte flash.");
        }

        lock (Simulator.Flash)
        {
            data.CopyTo(Simulator.Flash, offset);
        }
    }

    /// <summary>How many requests of a command the simulated loader has seen, by name (FLASH_DEFL_DATA, SpiFlashMd5) or number.</summary>
    public int CountOf(string command) => Simulator.CountOf(SimulatorFault.OpcodeOf(command));

    public override string ToString() => $"{Chip} simulator on {Url}";

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        listener?.Stop();
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

        pty?.Dispose();
        if (ptyLink is not null)
        {
            File.Delete(ptyLink);
        }

        stop.Dispose();
    }

    /// <summary>
    /// One simulator session per opening of the pty by the host: the master reports a hang-up from the host's closing the
    /// slave until it is opened again (and none before the first opening, when the session simply waits for bytes).
    /// </summary>
    private async Task ServePtyAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (!pty!.HostConnected)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(20), stop.Token).ConfigureAwait(false);
                    continue;
                }

                Sessions++;
                await Simulator.ServeAsync(new PtySessionStream(pty), stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener!.AcceptTcpClientAsync(stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            catch (InvalidOperationException) when (stop.IsCancellationRequested)
            {
                return; // stopped between the check above and the accept: the listener is no longer listening
            }

            client.NoDelay = true;
            Sessions++;
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
