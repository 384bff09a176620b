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
        TcpPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        acceptLoop = Task.Run(AcceptAsync);
    }

    public SimulatorServer(SimulatorOptions? options = null)
        : this(new Esp32Simulator(options))
    {
    }

    public Esp32Simulator Simulator { get; }

    /// <summary>The loopback TCP port the simulator listens on.</summary>
    public int TcpPort { get; }

    /// <summary>What to pass to -Port: socket://127.0.0.1:N, or rfc2217://127.0.0.1:N.</summary>
    public string Port => Url;

    /// <summary>Serve RFC 2217 (Telnet COM-PORT-OPTION, with DTR/RTS) instead of a raw byte stream.</summary>
    public bool Rfc2217 { get; }

    /// <summary>The last RFC 2217 connection's stream (its host-set baud rate).</summary>
    public Rfc2217Stream? LastRfc2217Stream { get; private set; }

    public string Url => Rfc2217 ? $"rfc2217://127.0.0.1:{TcpPort}" : $"socket://127.0.0.1:{TcpPort}";

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
