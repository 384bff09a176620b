using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace IoTHubMqtt.Esp32.Simulator;

/// <summary>
/// Simulates an ESP chip in serial download mode: the ROM loader, and after the real flasher stub is uploaded
/// (MEM_BEGIN/MEM_DATA/MEM_END with the stub's segments and entry), the stub protocol. Flash is a byte array
/// with NOR semantics: erased = 0xFF, a write can only clear bits. One connection = one boot into the ROM;
/// flash contents persist across connections.
/// See https://docs.espressif.com/projects/esptool/en/latest/esp32/advanced-topics/serial-protocol.html
/// </summary>
public sealed class Esp32Simulator
{
    private readonly SimulatedChip chip;
    private readonly Dictionary<byte, int> seen = [];
    private readonly object gate = new();
    private int syncsSeen;
    private int writeSessions;

    // Chip state that outlives a host connection (a TCP or pty connection does not touch EN): the running stub, RAM and
    // registers written. An EN reset (DTR/RTS over RFC 2217, or Reset()) clears it.
    private bool stubRunning;
    private readonly Dictionary<uint, uint> writtenRegisters = [];
    private readonly Dictionary<uint, byte[]> ram = [];

    public Esp32Simulator(SimulatorOptions? options = null)
    {
        Options = options ?? new SimulatorOptions();
        chip = SimulatedChip.Get(Options.Chip);
        Flash = new byte[Options.FlashSize];
        Flash.AsSpan().Fill(0xFF);
        Mode = Options.StartInBootloader ? SimulatedBootMode.Download : SimulatedBootMode.Application;
    }

    public SimulatorOptions Options { get; }

    /// <summary>The simulated flash (inspect it in tests).</summary>
    public byte[] Flash { get; }

    /// <summary>Bytes received from the host on the wire (SLIP framing included), across connections.</summary>
    public long BytesReceived { get; private set; }

    public long BytesSent { get; private set; }

    /// <summary>Download = the ROM loader answers; Application = the chip runs its app and ignores the loader protocol.</summary>
    public SimulatedBootMode Mode { get; internal set; }

    /// <summary>Resets seen on the EN line (through DTR/RTS over RFC 2217).</summary>
    public int Resets { get; internal set; }

    /// <summary>Bytes that crossed the line at mismatched baud rates (noise on both ends).</summary>
    public long GarbledBytes { get; private set; }

    /// <summary>The baud rate the simulated UART runs at now.</summary>
    public int CurrentBaud { get; private set; } = 115200;

    /// <summary>Commands seen, by opcode (e.g. to check that an unchanged region was not rewritten).</summary>
    public int CountOf(byte opcode)
    {
        lock (gate)
        {
            return seen.GetValueOrDefault(opcode);
        }
    }

    /// <summary>A register as the chip holds it now: written by the host, else its initial value from the options (0 if unset).</summary>
    public uint Register(uint address)
    {
        lock (gate)
        {
            return writtenRegisters.TryGetValue(address, out var value) ? value : Options.Registers.GetValueOrDefault(address);
        }
    }

    /// <summary>True while an uploaded flasher stub runs (until the next reset): a new connection finds it still running.</summary>
    public bool StubRunning
    {
        get
        {
            lock (gate)
            {
                return stubRunning;
            }
        }
    }

    /// <summary>
    /// Pulses EN as a reset button would: the stub stops, RAM and registers are cleared and the chip boots into its serial
    /// loader at 115200 baud (<paramref name="download"/>, IO0 held low) or into its application.
    /// </summary>
    public void Reset(bool download = true)
    {
        lock (gate)
        {
            Resets++;
            stubRunning = false;
            ram.Clear();
            writtenRegisters.Clear();
            CurrentBaud = 115200;
            Mode = download ? SimulatedBootMode.Download : SimulatedBootMode.Application;
        }
    }

    /// <summary>Serves one host connection until it closes or <paramref name="cancellationToken"/> fires.</summary>
    public async Task ServeAsync(Stream stream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!StubRunning)
        {
            CurrentBaud = 115200;
        }

        if (Options.StartInBootloader)
        {
            Mode = SimulatedBootMode.Download;
        }

        var session = new Session(this, stream);
        if (stream is ISerialLineEvents lines)
        {
            lines.ControlLinesChanged += session.OnControlLines;
        }
        try
        {
            await session.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or EndOfStreamException)
        {
        }
    }

    private int Count(byte opcode)
    {
        lock (gate)
        {
            seen[opcode] = seen.GetValueOrDefault(opcode) + 1;
            return seen[opcode];
        }
    }

    private SimulatorFault? FaultFor(SimulatorFaultKind kind, byte opcode, int occurrence) =>
        Options.Faults.FirstOrDefault(f => f.Kind == kind && f.Opcode == opcode && (f.Occurrence == occurrence || (f.Occurrence == 0 && kind == SimulatorFaultKind.SilentWriteFailure)));

    private sealed class Session(Esp32Simulator sim, Stream stream)
    {
        private const byte End = 0xC0, Esc = 0xDB;
        private const int RomSyncReplies = 8;
        private const uint RomSyncValue = 0x20120707;
        private readonly Queue<byte[]> frames = new();
        private readonly byte[] buffer = new byte[65536];
        private readonly List<byte> frame = [];
        private readonly RateLimiter inbound = new();
        private readonly RateLimiter outbound = new();
        private bool inFrame;
        private bool escaped;
        private bool en = true;
        private byte[]? pendingBootLog;

        // RAM download.
        private uint memAddress;
        private MemoryStream? memSegment;

        // Flash write session.
        private bool writing;
        private bool deflate;
        private bool silent;
        private uint writeOffset;
        private uint writeSize;
        private uint writeBlocks;
        private uint nextSeq;
        private MemoryStream? compressed;
        private uint plainPosition;

        private SimulatedChip Chip => sim.chip;

        /// <summary>A byte as a UART at the wrong rate reads it: deterministic noise that is never a SLIP delimiter.</summary>
        private static byte Noise(byte b, int index)
        {
            var noise = (byte)((b * 0x1D) + 0x3B + index);
            return noise == End ? (byte)0x3F : noise;
        }

        /// <summary>
        /// The bytes on the line are noise: the host's end runs at another baud rate than the chip's UART (known over RFC 2217
        /// and on a pty), or the chip's UART runs faster than the line carries (<see cref="SimulatorOptions.MaxBaudRate"/>).
        /// </summary>
        private bool BaudMismatch
        {
            get
            {
                var chipBaud = sim.CurrentBaud;
                return (sim.Options.MaxBaudRate > 0 && chipBaud > sim.Options.MaxBaudRate)
                    || (stream is IHostBaudRate host && host.HostBaudRate is > 0 and var hostBaud && hostBaud != chipBaud);
            }
        }

        private bool stub
        {
            get => sim.StubRunning;
            set
            {
                lock (sim.gate)
                {
                    sim.stubRunning = value;
                }
            }
        }

        private Dictionary<uint, uint> registers => sim.writtenRegisters;

        private Dictionary<uint, byte[]> ram => sim.ram;

        private int StatusLength => stub ? 2 : 4;

        public async Task RunAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                var request = await NextFrameAsync(cancellationToken).ConfigureAwait(false);
                if (request is null)
                {
                    return;
                }

                if (sim.Mode != SimulatedBootMode.Download)
                {
                    continue; // the application does not speak the loader protocol
                }

                if (request.Length < 8 || request[0] != 0x00 || BinaryPrimitives.ReadUInt16LittleEndian(request.AsSpan(2)) != request.Length - 8)
                {
                    continue; // malformed: the loader ignores it
                }

                var op = request[1];
                var occurrence = sim.Count(op);
                if (sim.FaultFor(SimulatorFaultKind.Disconnect, op, occurrence) is not null)
                {
                    return; // the session ends: the server closes the connection
                }

                if (sim.FaultFor(SimulatorFaultKind.DropRequestByte, op, occurrence) is not null)
                {
                    continue; // a byte lost on the wire makes the packet length wrong: ignored
                }

                var checksum = BinaryPrimitives.ReadUInt32LittleEndian(request.AsSpan(4));
                await HandleAsync(op, occurrence, request.AsMemory(8), checksum, cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>
        /// The auto-reset circuit: RTS asserted = EN low (reset), DTR asserted = IO0 low. When EN rises the chip boots:
        /// into the serial loader if IO0 is low, into the application otherwise, printing its boot log either way.
        /// </summary>
        public void OnControlLines(bool dtr, bool rts)
        {
            var enHigh = !rts;
            if (enHigh && !en)
            {
                var download = dtr;
                sim.Reset(download);
                writing = false;
                pendingBootLog = Encoding.ASCII.GetBytes(download
                    ? "ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n"
                    : "ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\nI (29) boot: ESP-IDF v5.2 2nd stage bootloader\r\n");
            }

            en = enHigh;
        }

        private async Task HandleAsync(byte op, int occurrence, ReadOnlyMemory<byte> payload, uint checksum, CancellationToken ct)
        {
            var data = payload.ToArray();
            uint W(int i) => data.Length >= (i + 1) * 4 ? BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(i * 4)) : 0;
            switch (op)
            {
                case 0x08: // SYNC
                    if (data.Length != 36 || data[0] != 0x07 || data[1] != 0x07 || data[2] != 0x12 || data[3] != 0x20)
                    {
                        return;
                    }

                    if (Interlocked.Increment(ref sim.syncsSeen) <= sim.Options.IgnoreFirstSyncs)
                    {
                        return;
                    }

                    // The ROM answers a SYNC eight times with a non-zero value (the first word of the SYNC payload, as
                    // traces of real chips show: 01 08 04 00 07 07 12 20 00 00 00 00); the flasher stub answers once with
                    // value 0, which is how esptool and esptool-js tell a stub left running from the ROM.
                    for (var i = 0; i < (stub ? 1 : RomSyncReplies); i++)
                    {
                        await RespondAsync(op, occurrence, stub ? 0u : RomSyncValue, [], ct).ConfigureAwait(false);
                    }

                    return;
                case 0x0A: // READ_REG
                    await RespondAsync(op, occurrence, ReadRegister(W(0)), [], ct).ConfigureAwait(false);
                    return;
                case 0x09: // WRITE_REG
                    WriteRegister(W(0), W(1), W(2));
                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    return;
                case 0x14 when Chip.SecurityInfoSupported: // GET_SECURITY_INFO (not on the ESP32 ROM)

                    var info = new byte[Chip.SecurityInfoHasChipId ? 20 : 12];
                    if (Chip.SecurityInfoHasChipId)
                    {
                        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(12), (uint)Chip.ChipId!.Value);
                        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(16), 3);
                    }

                    await RespondAsync(op, occurrence, 0, info, ct).ConfigureAwait(false);
                    return;
                case 0x05: // MEM_BEGIN
                    if (data.Length != 16)
                    {
                        await ErrorAsync(op, occurrence, stub ? (byte)0xC0 : (byte)0x05, ct).ConfigureAwait(false);
                        return;
                    }

                    memAddress = W(3);
                    memSegment = new MemoryStream();
                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    return;
                case 0x07: // MEM_DATA
                    if (!CheckData(data, checksum, out var memBlock))
                    {
                        await ErrorAsync(op, occurrence, stub ? (byte)0xC1 : (byte)0x07, ct).ConfigureAwait(false);
                        return;
                    }

                    memSegment?.Write(memBlock);
                    ram[memAddress] = memSegment?.ToArray() ?? [];
                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    return;
                case 0x06: // MEM_END
                    // The ROM jumps to the entry point. Whatever program was uploaded there runs as a flasher stub (the only
                    // kind of RAM program this simulator models), greeting with OHAI; an entry outside the uploaded segments
                    // is a jump into garbage: the chip stops answering. The mode changes before the response leaves, so
                    // whoever reads the response sees the chip as it now is.
                    var jumpsIntoGarbage = W(0) == 0 && !IsInUploadedRam(W(1));
                    if (jumpsIntoGarbage)
                    {
                        sim.Mode = SimulatedBootMode.Application;
                    }

                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    if (W(0) != 0 || jumpsIntoGarbage)
                    {
                        return; // no entry point: the loader stays in control; or the chip runs garbage
                    }

                    stub = true;
                    await SendFrameAsync("OHAI"u8.ToArray(), ct).ConfigureAwait(false);
                    return;
                case 0x0D: // SPI_ATTACH: the ROM takes 8 bytes, the stub 4
                    if (data.Length != (stub ? 4 : 8))
                    {
                        await ErrorAsync(op, occurrence, stub ? (byte)0xC0 : (byte)0x05, ct).ConfigureAwait(false);
                        return;
                    }

                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    return;
                case 0x0B: // SPI_SET_PARAMS
                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    return;
                case 0x0F: // CHANGE_BAUDRATE: answer at the old rate, then switch
                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    if (!sim.Options.IgnoreBaudRateChange)
                    {
                        sim.CurrentBaud = (int)W(0);
                    }

                    return;
                case 0x02 or 0x10: // FLASH_BEGIN / FLASH_DEFL_BEGIN
                    // The ROMs after the ESP32 take a 5th word (encrypted write flag); the ESP32 ROM does not. The stub
                    // accepts both layouts (esptool sends the 5th word to it too).
                    var lengthOk = stub ? data.Length is 16 or 20 : data.Length == (Chip.RomBeginHasEncryptedWord ? 20 : 16);
                    if (!lengthOk)
                    {
                        await ErrorAsync(op, occurrence, stub ? (byte)0xC0 : (byte)0x05, ct).ConfigureAwait(false);
                        return;
                    }

                    BeginWrite(op == 0x10, W(0), W(1), W(3), occurrence);
                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    return;
                case 0x03 or 0x11: // FLASH_DATA / FLASH_DEFL_DATA
                    var error = WriteBlock(op == 0x11, data, checksum);
                    if (error != 0)
                    {
                        await ErrorAsync(op, occurrence, error, ct).ConfigureAwait(false);
                        return;
                    }

                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    return;
                case 0x04 or 0x12: // FLASH_END / FLASH_DEFL_END
                    writing = false;
                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    return;
                case 0x13: // SPI_FLASH_MD5
                    if ((long)W(0) + W(1) > sim.Flash.Length)
                    {
                        await ErrorAsync(op, occurrence, stub ? (byte)0xC4 : (byte)0x06, ct).ConfigureAwait(false);
                        return;
                    }

                    var md5 = MD5.HashData(sim.Flash.AsSpan((int)W(0), (int)W(1)));
                    await RespondAsync(op, occurrence, 0, stub ? md5 : Encoding.ASCII.GetBytes(Convert.ToHexString(md5).ToLowerInvariant()), ct).ConfigureAwait(false);
                    return;
                case 0xD0 when stub: // ERASE_FLASH
                    sim.Flash.AsSpan().Fill(0xFF);
                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    return;
                case 0xD1 when stub: // ERASE_REGION
                    if (W(0) % 0x1000 != 0 || W(1) % 0x1000 != 0 || (long)W(0) + W(1) > sim.Flash.Length)
                    {
                        await ErrorAsync(op, occurrence, 0xC2, ct).ConfigureAwait(false);
                        return;
                    }

                    sim.Flash.AsSpan((int)W(0), (int)W(1)).Fill(0xFF);
                    await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
                    return;
                case 0xD2 when stub: // READ_FLASH
                    await ReadFlashAsync(op, occurrence, W(0), W(1), W(2), W(3), ct).ConfigureAwait(false);
                    return;
                default:
                    if (!stub && Chip.Type == SimulatedChipType.Esp32)
                    {
                        // The ESP32 ROM refuses a command it does not have (GET_SECURITY_INFO, the stub-only commands) with
                        // invalid-message replies that do not carry the request's opcode, repeated: esptool and esptool-js
                        // recognise an unsupported command by exactly that (ROM_INVALID_RECV_MSG under another opcode) and
                        // drain the repeats. The ROM sends them back to back, so they leave in one write: paced one by one
                        // on a loaded machine, a repeat could arrive after the host's drain and pass for the refusal of
                        // the next command.
                        await SendResponseAsync(0x00, occurrence, 0, [1, 0x05, 0, 0], ct, RomSyncReplies).ConfigureAwait(false);

                        return;
                    }

                    await ErrorAsync(op, occurrence, stub ? (byte)0xC3 : (byte)0x05, ct).ConfigureAwait(false);
                    return;
            }
        }

        private bool IsInUploadedRam(uint address) =>
            ram.Any(segment => address >= segment.Key && address < segment.Key + (uint)segment.Value.Length);

        private void BeginWrite(bool isDeflate, uint size, uint blocks, uint offset, int occurrence)
        {
            writing = true;
            deflate = isDeflate;
            writeOffset = offset;
            writeSize = size;
            writeBlocks = blocks;
            nextSeq = 0;
            plainPosition = 0;
            compressed = new MemoryStream();
            var session = Interlocked.Increment(ref sim.writeSessions);
            silent = sim.FaultFor(SimulatorFaultKind.SilentWriteFailure, 0x10, session) is not null
                || sim.FaultFor(SimulatorFaultKind.SilentWriteFailure, 0x10, 0) is not null;

            // Erase the sectors the write covers.
            var start = offset / 0x1000 * 0x1000;
            var end = Math.Min((long)sim.Flash.Length, ((long)offset + size + 0xFFF) / 0x1000 * 0x1000);
            if (!silent && start < end)
            {
                sim.Flash.AsSpan((int)start, (int)(end - start)).Fill(0xFF);
            }
        }

        private byte WriteBlock(bool isDeflate, ReadOnlySpan<byte> data, uint checksum)
        {
            if (!writing || isDeflate != deflate)
            {
                return stub ? (byte)0xC6 : (byte)0x06;
            }

            if (!CheckData(data, checksum, out var block))
            {
                return stub ? (byte)0xC1 : (byte)0x07;
            }

            var seq = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
            if (seq != nextSeq)
            {
                return stub ? (byte)0xC0 : (byte)0x06;
            }

            nextSeq++;
            if (!deflate)
            {
                Program(block, writeOffset + plainPosition);
                plainPosition += (uint)block.Length;
                return 0;
            }

            compressed!.Write(block);
            if (nextSeq < writeBlocks)
            {
                return 0;
            }

            byte[] plain;
            try
            {
                using var input = new MemoryStream(compressed.ToArray());
                using var zlib = new ZLibStream(input, CompressionMode.Decompress);
                using var output = new MemoryStream();
                zlib.CopyTo(output);
                plain = output.ToArray();
            }
            catch (InvalidDataException)
            {
                return stub ? (byte)0xC7 : (byte)0x0B;
            }

            if (plain.Length > writeSize && stub)
            {
                return 0xC9;
            }

            Program(plain, writeOffset);
            return 0;
        }

        private void Program(ReadOnlySpan<byte> bytes, uint offset)
        {
            if (silent)
            {
                return;
            }

            var n = (int)Math.Min(bytes.Length, Math.Max(0, sim.Flash.Length - (long)offset));
            for (var i = 0; i < n; i++)
            {
                sim.Flash[offset + i] &= bytes[i]; // NOR flash: a write only clears bits
            }
        }

        private static bool CheckData(ReadOnlySpan<byte> data, uint checksum, out byte[] block)
        {
            block = [];
            if (data.Length < 16)
            {
                return false;
            }

            var length = BinaryPrimitives.ReadUInt32LittleEndian(data);
            if (length != data.Length - 16)
            {
                return false;
            }

            block = data[16..].ToArray();
            byte state = 0xEF;
            foreach (var b in block)
            {
                state ^= b;
            }

            return state == checksum;
        }

        private uint ReadRegister(uint address)
        {
            if (address == 0x40001000)
            {
                return Chip.Magic;
            }

            if (address == Chip.UartClockDividerRegister)
            {
                // Integer part in bits 0-19, sixteenths in bits 20-23, for the baud rate the UART runs at now.
                var sixteenths = (long)Chip.CrystalHz * 16 / sim.CurrentBaud;
                return (uint)((sixteenths / 16) | ((sixteenths % 16) << 20));
            }

            var mac = sim.Options.Mac;
            if (address == Chip.MacRegister)
            {
                return (uint)(mac[2] << 24 | mac[3] << 16 | mac[4] << 8 | mac[5]);
            }

            if (address == Chip.MacRegister + 4)
            {
                return (uint)(mac[0] << 8 | mac[1]);
            }

            return registers.TryGetValue(address, out var value) ? value : sim.Options.Registers.GetValueOrDefault(address);
        }

        private void WriteRegister(uint address, uint value, uint mask)
        {
            var old = registers.TryGetValue(address, out var written) ? written : sim.Options.Registers.GetValueOrDefault(address);
            value = (old & ~mask) | (value & mask);
            if (address == Chip.SpiBase && (value & (1u << 18)) != 0)
            {
                // SPI user command: RDID (0x9F) puts the JEDEC id in W0; the command bit clears when done.
                var command = registers.GetValueOrDefault(Chip.SpiBase + Chip.Usr2Offset) & 0xFF;
                if (command == 0x9F)
                {
                    var capacity = (uint)Math.Log2(sim.Options.FlashSize);
                    registers[Chip.SpiBase + Chip.W0Offset] = sim.Options.FlashJedecId ?? (0xEF | (0x40u << 8) | (capacity << 16)); // Winbond W25Q
                }

                value &= ~(1u << 18);
            }

            registers[address] = value;
        }

        private async Task ReadFlashAsync(byte op, int occurrence, uint offset, uint length, uint blockSize, uint inFlight, CancellationToken ct)
        {
            if ((long)offset + length > sim.Flash.Length || blockSize == 0 || inFlight == 0)
            {
                await ErrorAsync(op, occurrence, 0xC0, ct).ConfigureAwait(false);
                return;
            }

            await RespondAsync(op, occurrence, 0, [], ct).ConfigureAwait(false);
            uint sent = 0, acked = 0;
            while (acked < length)
            {
                while (sent < length && sent - acked < inFlight * blockSize)
                {
                    var n = Math.Min(blockSize, length - sent);
                    await SendFrameAsync(sim.Flash.AsSpan((int)(offset + sent), (int)n).ToArray(), ct).ConfigureAwait(false);
                    sent += n;
                }

                var ack = await NextFrameAsync(ct).ConfigureAwait(false);
                if (ack is null)
                {
                    return;
                }

                if (ack.Length == 4)
                {
                    acked = BinaryPrimitives.ReadUInt32LittleEndian(ack);
                }
            }

            await SendFrameAsync(MD5.HashData(sim.Flash.AsSpan((int)offset, (int)length)), ct).ConfigureAwait(false);
        }

        private Task ErrorAsync(byte op, int occurrence, byte code, CancellationToken ct)
        {
            var status = new byte[StatusLength];
            status[0] = 1;
            status[1] = code;
            return SendResponseAsync(op, occurrence, 0, status, ct);
        }

        private Task RespondAsync(byte op, int occurrence, uint value, byte[] data, CancellationToken ct)
        {
            var body = new byte[data.Length + StatusLength];
            data.CopyTo(body, 0);
            return SendResponseAsync(op, occurrence, value, body, ct);
        }

        private async Task SendResponseAsync(byte op, int occurrence, uint value, byte[] body, CancellationToken ct, int times = 1)
        {
            if (sim.FaultFor(SimulatorFaultKind.DropResponse, op, occurrence) is not null)
            {
                return;
            }

            if (sim.FaultFor(SimulatorFaultKind.DelayResponse, op, occurrence) is { } delay)
            {
                await Task.Delay(delay.Delay, ct).ConfigureAwait(false);
            }

            var packet = new byte[8 + body.Length];
            packet[0] = 0x01;
            packet[1] = op;
            BinaryPrimitives.WriteUInt16LittleEndian(packet.AsSpan(2), (ushort)body.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(packet.AsSpan(4), value);
            body.CopyTo(packet, 8);
            if (sim.FaultFor(SimulatorFaultKind.CorruptResponse, op, occurrence) is not null)
            {
                packet[1] ^= 0x5A; // a flipped bit pattern in the opcode byte: the host cannot match it
            }

            await SendFrameAsync(packet, ct, times).ConfigureAwait(false);
        }

        /// <summary>Sends the SLIP frame of <paramref name="payload"/>, <paramref name="times"/> times back to back in one write.</summary>
        private async Task SendFrameAsync(byte[] payload, CancellationToken ct, int times = 1)
        {
            var encoded = new List<byte>(payload.Length + 8) { End };
            foreach (var b in payload)
            {
                if (b == End)
                {
                    encoded.Add(Esc);
                    encoded.Add(0xDC);
                }
                else if (b == Esc)
                {
                    encoded.Add(Esc);
                    encoded.Add(0xDD);
                }
                else
                {
                    encoded.Add(b);
                }
            }

            encoded.Add(End);
            var one = encoded.ToArray();
            var bytes = times == 1 ? one : Enumerable.Repeat(one, times).SelectMany(b => b).ToArray();
            if (sim.Options.LimitRate)
            {
                await outbound.WaitAsync(bytes.Length, sim.CurrentBaud, ct).ConfigureAwait(false);
            }

            sim.BytesSent += bytes.Length;
            if (BaudMismatch)
            {
                // The host samples the chip's bits at another rate: it reads noise with no frame delimiters in it.
                sim.GarbledBytes += bytes.Length;
                bytes = bytes.Select(Noise).ToArray();
            }

            await stream.WriteAsync(bytes, ct).ConfigureAwait(false);
            await stream.FlushAsync(ct).ConfigureAwait(false);
        }

        private async Task<byte[]?> NextFrameAsync(CancellationToken ct)
        {
            while (frames.Count == 0)
            {
                var n = await stream.ReadAsync(buffer, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    return null;
                }

                sim.BytesReceived += n;
                if (pendingBootLog is { } log)
                {
                    pendingBootLog = null;
                    await stream.WriteAsync(log, ct).ConfigureAwait(false);
                }

                if (sim.Options.LimitRate)
                {
                    await inbound.WaitAsync(n, sim.CurrentBaud, ct).ConfigureAwait(false);
                }

                if (BaudMismatch)
                {
                    // The UART samples the host's bits at another rate: what it reads is noise, never a frame.
                    sim.GarbledBytes += n;
                    inFrame = false;
                    frame.Clear();
                    continue;
                }

                for (var i = 0; i < n; i++)
                {
                    Decode(buffer[i]);
                }
            }

            return frames.Dequeue();
        }

        private void Decode(byte b)
        {
            if (!inFrame)
            {
                if (b == End)
                {
                    inFrame = true;
                    frame.Clear();
                }

                return;
            }

            if (b == End)
            {
                if (frame.Count > 0)
                {
                    frames.Enqueue(frame.ToArray());
                    inFrame = false;
                }

                frame.Clear();
                escaped = false;
                return;
            }

            if (escaped)
            {
                frame.Add(b == 0xDC ? End : b == 0xDD ? Esc : b);
                escaped = false;
            }
            else if (b == Esc)
            {
                escaped = true;
            }
            else
            {
                frame.Add(b);
            }
        }
    }
}

/// <summary>
/// Holds a direction of the simulated UART to baud/10 bytes a second: bytes are "on the wire" until the time they
/// would take has passed. Sleeps coarsely, then yields until the exact moment, so timer slack does not slow the line.
/// </summary>
internal sealed class RateLimiter
{
    private readonly System.Diagnostics.Stopwatch clock = System.Diagnostics.Stopwatch.StartNew();
    private double busyUntil;

    public Task WaitAsync(int bytes, int baud, CancellationToken ct)
    {
        busyUntil = Math.Max(busyUntil, clock.Elapsed.TotalSeconds) + (bytes * 10.0 / baud);

        // A blocking sleep on the session's thread wakes more punctually than a timer continuation; the last
        // millisecond is spun so the line is not held longer than the bytes take.
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var ahead = busyUntil - clock.Elapsed.TotalSeconds;
            if (ahead <= 0)
            {
                return Task.CompletedTask;
            }

            if (ahead > 0.002)
            {
                Thread.Sleep(TimeSpan.FromSeconds(Math.Min(ahead - 0.001, 0.05)));
            }
            else
            {
                Thread.SpinWait(200);
            }
        }
    }
}
