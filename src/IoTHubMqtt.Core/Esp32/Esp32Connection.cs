using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32.Transport;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>
/// Talks to the serial bootloader over a port: SLIP frames, request/response matching, per-command timeouts,
/// and the reset + SYNC handshake. Not thread-safe: one command at a time.
/// </summary>
public sealed class Esp32Connection
{
    private const int MaxSyncAttemptsPerReset = 5;
    private readonly SlipDecoder decoder = new();
    private readonly Queue<byte[]> frames = new();
    private readonly byte[] readBuffer = new byte[16384];
    private readonly Action<string>? log;

    public Esp32Connection(IEsp32Port port, Action<string>? log = null)
    {
        Port = port ?? throw new ArgumentNullException(nameof(port));
        this.log = log;
    }

    public IEsp32Port Port { get; }

    /// <summary>True once the flasher stub runs (2 status bytes, stub-only commands).</summary>
    public bool IsStub { get; internal set; }

    /// <summary>Bytes written to the port, SLIP framing included.</summary>
    public long WireBytesWritten { get; private set; }

    /// <summary>Resets into the bootloader (each strategy in turn, <paramref name="attempts"/> rounds) and syncs.</summary>
    public async Task ConnectAsync(IReadOnlyList<ResetStrategy> strategies, int attempts = 3, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(strategies);
        for (var attempt = 0; attempt < attempts; attempt++)
        {
            foreach (var strategy in strategies)
            {
                log?.Invoke($"Connecting to {Port.Name} (reset: {strategy.Name}, attempt {attempt + 1}/{attempts})");
                await strategy.ResetAsync(Port, cancellationToken).ConfigureAwait(false);
                for (var i = 0; i < MaxSyncAttemptsPerReset; i++)
                {
                    if (await TrySyncAsync(cancellationToken).ConfigureAwait(false))
                    {
                        log?.Invoke($"Synced with the bootloader on {Port.Name}");
                        return;
                    }
                }
            }
        }

        var noise = System.Text.Encoding.ASCII.GetString(decoder.Noise.ToArray());
        throw Esp32Errors.SyncFailed(Port.Name, noise);
    }

    /// <summary>One SYNC; true when answered. Extra SYNC replies (the ROM sends several) are drained.</summary>
    public async Task<bool> TrySyncAsync(CancellationToken cancellationToken = default)
    {
        DiscardInput();
        await SendAsync(Esp32Command.Sync(), cancellationToken).ConfigureAwait(false);
        var response = await ReadResponseAsync(Esp32Opcode.Sync, TimeSpan.FromMilliseconds(200), cancellationToken).ConfigureAwait(false);
        if (response is null)
        {
            return false;
        }

        // Drain the remaining SYNC answers.
        while (await ReadResponseAsync(Esp32Opcode.Sync, TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false) is not null)
        {
        }

        return true;
    }

    /// <summary>
    /// Sends a command and waits for its response; responses to other opcodes are skipped. A non-zero status
    /// byte (after <paramref name="responseDataLength"/> data bytes) throws Esp32CommandFailed; no answer throws Esp32Timeout.
    /// </summary>
    public async Task<Esp32Response> CommandAsync(Esp32Command command, int responseDataLength = 0, TimeSpan? timeout = null, string? region = null, long? offset = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        await SendAsync(command, cancellationToken).ConfigureAwait(false);
        var response = await ReadResponseAsync(command.Opcode, timeout ?? Esp32Command.TimeoutFor(command.Opcode), cancellationToken).ConfigureAwait(false)
            ?? throw Esp32Errors.Timeout(Port.Name, command.Opcode.ToString(), region, offset);
        var (ok, error) = response.Status(responseDataLength);
        if (!ok)
        {
            if (response.Data.Length < responseDataLength + 2)
            {
                throw Esp32Errors.Protocol(Port.Name, $"{command.Opcode} answered with {response.Data.Length} bytes, expected {responseDataLength + 2}.");
            }

            throw Esp32Errors.RomError(command.Opcode.ToString(), Esp32RomError.FromCode(error), error, region, offset);
        }

        return response;
    }

    public async Task<uint> ReadRegisterAsync(uint address, CancellationToken cancellationToken = default) =>
        (await IdempotentAsync(Esp32Command.ReadReg(address), cancellationToken: cancellationToken).ConfigureAwait(false)).Value;

    public Task WriteRegisterAsync(uint address, uint value, CancellationToken cancellationToken = default) =>
        IdempotentAsync(Esp32Command.WriteReg(address, value), cancellationToken: cancellationToken);

    /// <summary>A command that may safely run twice: a lost or corrupted answer is retried (3 attempts in all).</summary>
    public async Task<Esp32Response> IdempotentAsync(Esp32Command command, int responseDataLength = 0, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await CommandAsync(command, responseDataLength, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (IoTHubMqttException ex) when (ex.ErrorId == "Esp32Timeout" && attempt < 3)
            {
                log?.Invoke($"{command.Opcode}: no answer, retrying");
                DiscardInput();
            }
        }
    }

    /// <summary>Writes a SLIP-framed packet (requests, and the READ_FLASH acknowledgements).</summary>
    public async Task SendRawAsync(byte[] packet, CancellationToken cancellationToken = default)
    {
        var frame = Slip.Encode(packet);
        WireBytesWritten += frame.Length;
        await Port.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads the next SLIP frame, or null after <paramref name="timeout"/>.</summary>
    public async Task<byte[]?> ReadFrameAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (frames.Count == 0)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                return null;
            }

            int n;
            try
            {
                n = await Port.ReadAsync(readBuffer, left, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException ex)
            {
                throw new IoTHubMqttException("Esp32PortClosed", IoTHubErrorKind.ConnectionError, $"{Port.Name} was closed: {ex.Message}", "Check the cable and that the board is powered.", Port.Name, ex);
            }

            if (n > 0)
            {
                decoder.Feed(readBuffer.AsSpan(0, n), frames.Enqueue);
            }
        }

        return frames.Dequeue();
    }

    /// <summary>Drops buffered input and any partial frame.</summary>
    public void DiscardInput()
    {
        Port.DiscardInput();
        frames.Clear();
        decoder.Reset();
    }

    private Task SendAsync(Esp32Command command, CancellationToken cancellationToken) => SendRawAsync(command.Encode(), cancellationToken);

    private async Task<Esp32Response?> ReadResponseAsync(Esp32Opcode opcode, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                return null;
            }

            var frame = await ReadFrameAsync(left, cancellationToken).ConfigureAwait(false);
            if (frame is null)
            {
                return null;
            }

            var response = Esp32Response.TryDecode(frame);
            if (response is not null && response.Opcode == opcode)
            {
                return response;
            }
        }
    }
}
