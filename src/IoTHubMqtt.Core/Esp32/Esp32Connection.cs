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

    public Esp32Connection(IEsp32Port port, Action<string>? log = null, TimeProvider? time = null)
    {
        Port = port ?? throw new ArgumentNullException(nameof(port));
        this.log = log;
        Time = time ?? TimeProvider.System;
    }

    public IEsp32Port Port { get; }

    /// <summary>The clock every timeout and wait uses (a fake one in tests).</summary>
    public TimeProvider Time { get; }

    /// <summary>True once the flasher stub runs (2 status bytes, stub-only commands).</summary>
    public bool IsStub { get; internal set; }

    /// <summary>
    /// True when the SYNC was answered by a flasher stub left running by an earlier session (the board was not reset):
    /// the ROM answers SYNC with a non-zero value, the stub with 0 (esptool's serial-protocol documentation and its
    /// reference flasher tell the two apart this way).
    /// </summary>
    public bool FoundRunningStub { get; private set; }

    /// <summary>Bytes written to the port, SLIP framing included.</summary>
    public long WireBytesWritten { get; private set; }

    /// <summary>
    /// Resets into the bootloader (each strategy in turn, <paramref name="attempts"/> rounds) and syncs. When the first
    /// round gets no answer and the board printed nothing readable, a SYNC is tried at each of
    /// <paramref name="stubBaudRates"/>: a flasher stub left running by an earlier session that could not reset the board
    /// (no DTR/RTS: a pty, a board without the auto-reset circuit) still talks at the rate that session switched to, and
    /// at the port's rate its bytes and ours are noise to each other. A board found that way is used at that rate.
    /// </summary>
    public async Task ConnectAsync(IReadOnlyList<ResetStrategy> strategies, int attempts = 3, CancellationToken cancellationToken = default, IReadOnlyList<int>? stubBaudRates = null)
    {
        ArgumentNullException.ThrowIfNull(strategies);
        var triedRates = new List<int>();
        for (var attempt = 0; attempt < attempts; attempt++)
        {
            foreach (var strategy in strategies)
            {
                log?.Invoke($"Connecting to {Port.Name} (reset: {strategy.Name}, attempt {attempt + 1}/{attempts})");
                await strategy.ResetAsync(Port, Time, cancellationToken).ConfigureAwait(false);
                for (var i = 0; i < MaxSyncAttemptsPerReset; i++)
                {
                    if (await TrySyncAsync(cancellationToken).ConfigureAwait(false))
                    {
                        log?.Invoke($"Synced with the bootloader on {Port.Name}");
                        return;
                    }
                }
            }

            if (attempt == 0 && stubBaudRates is { Count: > 0 } && Port.HasBaudRate && !HeardBootLog())
            {
                if (await TrySyncAtOtherRatesAsync(stubBaudRates, triedRates, cancellationToken).ConfigureAwait(false))
                {
                    return;
                }
            }
        }

        var noise = System.Text.Encoding.ASCII.GetString(decoder.Noise.ToArray());
        throw Esp32Errors.SyncFailed(Port.Name, noise, triedRates);
    }

    private async Task<bool> TrySyncAtOtherRatesAsync(IReadOnlyList<int> rates, List<int> tried, CancellationToken cancellationToken)
    {
        var opened = Port.BaudRate;
        foreach (var rate in rates.Where(r => r != opened).Distinct())
        {
            tried.Add(rate);
            log?.Invoke($"No answer at {opened} baud on {Port.Name}: trying {rate} baud, where a flasher stub left running by an earlier session would talk");
            await Port.SetBaudRateAsync(rate, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < SyncAttemptsAtOtherRates; i++)
            {
                if (await TrySyncAsync(cancellationToken).ConfigureAwait(false))
                {
                    log?.Invoke($"Synced with the {(FoundRunningStub ? "flasher stub" : "bootloader")} on {Port.Name} at {rate} baud");
                    return true;
                }
            }
        }

        await Port.SetBaudRateAsync(opened, cancellationToken).ConfigureAwait(false);
        DiscardInput();
        return false;
    }

    private const int SyncAttemptsAtOtherRates = 2;

    /// <summary>True when the board printed readable text (its boot log): it talks at the port's rate and is not in a stub left at another.</summary>
    private bool HeardBootLog()
    {
        var noise = decoder.Noise;
        var readable = noise.Count(b => b is (>= 0x20 and < 0x7F) or (byte)'\r' or (byte)'\n' or (byte)'\t');
        return readable >= 16 && readable * 10 >= noise.Count * 9;
    }

    /// <summary>
    /// One SYNC; true when answered. Extra SYNC replies (the ROM sends eight) are drained. A reply whose value is 0 comes
    /// from a flasher stub still running from an earlier session: it is reused (<see cref="IsStub"/>), as esptool does.
    /// </summary>
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
        var stub = response.Value == 0;
        while (await ReadResponseAsync(Esp32Opcode.Sync, TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false) is { } extra)
        {
            stub &= extra.Value == 0;
        }

        if (stub)
        {
            FoundRunningStub = true;
            IsStub = true;
            log?.Invoke($"A flasher stub is still running on {Port.Name} (SYNC answered with value 0): reusing it");
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
        if (response.Opcode != command.Opcode)
        {
            // The ROM's refusal of a command it does not have (see ReadResponseAsync); its repeats are drained.
            while (await ReadFrameAsync(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false) is not null)
            {
            }

            throw Esp32Errors.NotSupported(Port.Name, command.Opcode.ToString());
        }

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
            catch (IoTHubMqttException ex) when (ex.IsTransient && attempt < 3)
            {
                log?.Invoke($"{command.Opcode}: {(ex.ErrorId == ErrorIds.Esp32Timeout ? "no answer" : ex.Message)}, retrying");
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

    /// <summary>Reads the next SLIP frame, or null after <paramref name="timeout"/> (measured on <see cref="Time"/>).</summary>
    public async Task<byte[]?> ReadFrameAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (frames.Count > 0)
        {
            return frames.Dequeue();
        }

        using var deadline = new CancellationTokenSource(timeout, Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        while (frames.Count == 0)
        {
            int n;
            try
            {
                n = await Port.ReadAsync(readBuffer, Timeout.InfiniteTimeSpan, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return null;
            }
            catch (IOException ex)
            {
                throw new IoTHubMqttException(ErrorIds.Esp32PortClosed, $"{Port.Name} was closed: {ex.Message}", "Check the cable and that the board is powered.", Port.Name, ex);
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

    /// <summary>
    /// The response to <paramref name="opcode"/>; responses to other opcodes are skipped, except the ROM's refusal of a
    /// command it does not have: an invalid-message status (1, 0x05) under another opcode, which esptool and esptool-js
    /// also read as "unsupported command" (it is returned as is, for the caller to see the opcode differ).
    /// </summary>
    private async Task<Esp32Response?> ReadResponseAsync(Esp32Opcode opcode, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Time.GetTimestamp() + (long)(timeout.TotalSeconds * Time.TimestampFrequency);
        while (true)
        {
            var left = Time.GetElapsedTime(Time.GetTimestamp(), deadline);
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

            if (response is { Data: [not 0, RomInvalidMessage, ..] } && !IsStub && opcode != Esp32Opcode.Sync)
            {
                return response;
            }
        }
    }

    /// <summary>ROM error 0x05, "received message is invalid" (serial-protocol documentation, ROM loader errors).</summary>
    private const byte RomInvalidMessage = 0x05;
}
