using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32.Transport;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>
/// Flashing orchestration: connect → detect chip (checked against the expected one) → load stub → flash id/size →
/// change baud → write regions (compressed, skipping unchanged ones) → verify MD5 → reset. Every failure is an
/// exception naming the region and offset; a region is reported only after its flash MD5 matched.
/// </summary>
public sealed class Esp32Flasher : IAsyncDisposable
{
    private const int RomBlockSize = 0x400;
    private const int StubBlockSize = 0x4000;
    private const int RamBlockSize = 0x1800;
    private const uint SpiUsrCommand = 1u << 31;
    private const uint SpiUsrMiso = 1u << 28;
    private const uint SpiCmdUsr = 1u << 18;
    private const int RomBaudRate = 115200;

    private readonly Esp32FlasherOptions options;
    private readonly bool ownsPort;
    private Esp32ChipInfo? chip;
    private bool stubConfigured;

    private Esp32Flasher(IEsp32Port port, Esp32FlasherOptions options, bool ownsPort)
    {
        this.options = options;
        this.ownsPort = ownsPort;
        Connection = new Esp32Connection(port, options.Log, options.TimeProvider);
    }

    public Esp32Connection Connection { get; }

    public Esp32DeviceInfo Device { get; private set; } = null!;

    public Esp32ChipInfo ChipInfo => chip ?? throw new InvalidOperationException("Not connected.");

    /// <summary>Bytes written to the port so far (SLIP framing included).</summary>
    public long WireBytesWritten => Connection.WireBytesWritten;

    /// <summary>Opens <paramref name="port"/> (serial name, socket:// or rfc2217://) and connects.</summary>
    public static async Task<Esp32Flasher> ConnectAsync(string port, Esp32FlasherOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new Esp32FlasherOptions();
        if (options.UsbProductId is null && !port.Contains("://", StringComparison.Ordinal))
        {
            // The port's USB id picks the reset sequence and tells whether the chip talks over its USB-JTAG-serial peripheral.
            options.UsbProductId = UsbProductIdOf(port);
        }

        var transport = await Esp32PortFactory.OpenAsync(port, RomBaudRate, cancellationToken).ConfigureAwait(false);
        try
        {
            return await ConnectAsync(transport, options, ownsPort: true, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Connects over an open port.</summary>
    public static async Task<Esp32Flasher> ConnectAsync(IEsp32Port port, Esp32FlasherOptions? options = null, bool ownsPort = false, CancellationToken cancellationToken = default)
    {
        var flasher = new Esp32Flasher(port, options ?? new Esp32FlasherOptions(), ownsPort);
        await flasher.InitializeAsync(cancellationToken).ConfigureAwait(false);
        return flasher;
    }

    private static ushort? UsbProductIdOf(string port)
    {
        try
        {
            return Esp32PortEnumerator.Enumerate().FirstOrDefault(c => string.Equals(c.Port, port, OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal)) is { VendorId: not 0 } candidate
                ? candidate.ProductId
                : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or PlatformNotSupportedException or InvalidOperationException)
        {
            return null;
        }
    }

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var port = Connection.Port;
        await Connection.ConnectAsync(ResetStrategy.For(options.Reset, port, options.UsbProductId), options.ConnectAttempts, cancellationToken, [options.BaudRate, .. StubBaudRates]).ConfigureAwait(false);
        stubConfigured = false;
        var (detected, revision) = await DetectChipAsync(cancellationToken).ConfigureAwait(false);
        chip = detected;
        if (options.Chip != Esp32Chip.Auto && options.Chip != detected.Chip)
        {
            throw Esp32Errors.ChipMismatch(port.Name, options.Chip, detected.Chip);
        }

        var mac = await ReadMacAsync(cancellationToken).ConfigureAwait(false);
        if (options.UsbProductId == ResetStrategy.UsbJtagSerialProductId && detected.UsbWatchdogs is { } watchdogs && !Connection.FoundRunningStub)
        {
            await DisableWatchdogsAsync(watchdogs, cancellationToken).ConfigureAwait(false);
        }

        // The ROM attaches the flash and reads its id; the stub is loaded only when a write, erase or read needs it,
        // so an unchanged re-flash (MD5 checks only) never pays for the stub upload. A stub left running by an earlier
        // session answers in its own dialect (SPI_ATTACH without the ROM's extra word).
        await Connection.IdempotentAsync(Esp32Command.SpiAttach(rom: !Connection.IsStub), cancellationToken: cancellationToken).ConfigureAwait(false);
        var flashId = await ReadFlashIdAsync(cancellationToken).ConfigureAwait(false);
        var detectedSize = Esp32FlashSize.FromJedecId(flashId);
        var flashSize = detectedSize ?? options.FlashSize ?? UnknownFlashSizeBound;
        if (detectedSize is null)
        {
            options.Log?.Invoke(options.FlashSize is null
                ? $"The flash (JEDEC id 0x{flashId:X6}) does not say its size: the bootloader header keeps its own size, and writes are held within {Esp32Format.Size(UnknownFlashSizeBound)}. Give -FlashSize to set it."
                : $"The flash (JEDEC id 0x{flashId:X6}) does not say its size; using the {Esp32Format.Size(flashSize)} given.");
        }

        await Connection.IdempotentAsync(Esp32Command.SpiSetParams((uint)flashSize), cancellationToken: cancellationToken).ConfigureAwait(false);
        Device = new Esp32DeviceInfo
        {
            Port = port.Name,
            Chip = detected.Chip,
            ChipName = detected.Name,
            Revision = revision,
            Features = detected.Features,
            MacAddress = mac,
            FlashId = flashId,
            FlashSize = flashSize,
            FlashSizeDetected = detectedSize is not null,
        };
        options.Log?.Invoke($"Detected {Device}");
    }

    /// <summary>Where a stub left running by an earlier session may talk besides the configured -Baud: the usual transfer rates.</summary>
    private static readonly int[] StubBaudRates = [921600, 460800, 230400];

    /// <summary>The bound for writes when the flash does not say its size: 4 MB, the smallest flash of current ESP32 modules.</summary>
    private const long UnknownFlashSizeBound = 4L * 1024 * 1024;

    /// <summary>RTC watchdog off, super watchdog set to feed itself (each register unlocked with its key, then locked again).</summary>
    private async Task DisableWatchdogsAsync(Esp32Watchdogs w, CancellationToken cancellationToken)
    {
        await Connection.WriteRegisterAsync(w.RtcWdtWriteProtect, Esp32Watchdogs.RtcWdtKey, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(w.RtcWdtConfig0, 0, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(w.RtcWdtWriteProtect, 0, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(w.SwdWriteProtect, w.SwdKey, cancellationToken).ConfigureAwait(false);
        var swd = await Connection.ReadRegisterAsync(w.SwdConfig, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(w.SwdConfig, swd | w.SwdAutoFeed, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(w.SwdWriteProtect, 0, cancellationToken).ConfigureAwait(false);
        options.Log?.Invoke("Watchdogs disabled for the write (USB-JTAG-serial keeps them running in the loader)");
    }

    /// <summary>Uploads the stub (once), re-attaches the flash through it and switches to the configured baud rate.</summary>
    public async Task EnsureStubAsync(CancellationToken cancellationToken = default)
    {
        if (stubConfigured || (!Connection.IsStub && !options.UseStub))
        {
            return;
        }

        if (!Connection.IsStub)
        {
            await LoadStubAsync(cancellationToken).ConfigureAwait(false);
            await Connection.IdempotentAsync(Esp32Command.SpiAttach(rom: false), cancellationToken: cancellationToken).ConfigureAwait(false);
            await Connection.IdempotentAsync(Esp32Command.SpiSetParams((uint)Device.FlashSize), cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        // A stub found running answers at the rate the port was opened at; either way the transfer rate is set now.
        stubConfigured = true;
        if (options.BaudRate != Connection.Port.BaudRate)
        {
            await ChangeBaudAsync(options.BaudRate, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<(Esp32ChipInfo Chip, string? Revision)> DetectChipAsync(CancellationToken cancellationToken)
    {
        // GET_SECURITY_INFO carries the chip id on newer ROMs; the ESP32 ROM rejects it, the S2 ROM answers without an id.
        Esp32ChipInfo? chipInfo = null;
        try
        {
            var info = await Connection.CommandAsync(Esp32Command.GetSecurityInfo(), 20, TimeSpan.FromMilliseconds(500), cancellationToken: cancellationToken).ConfigureAwait(false);
            chipInfo = Esp32ChipInfo.FromChipId((int)BinaryPrimitives.ReadUInt32LittleEndian(info.Data.AsSpan(12)));
        }
        catch (IoTHubMqttException ex) when (ex.ErrorId is ErrorIds.Esp32CommandFailed or ErrorIds.Esp32CommandNotSupported or ErrorIds.Esp32ProtocolError or ErrorIds.Esp32Timeout)
        {
            options.Log?.Invoke($"{ex.Message} Reading the chip magic instead.");
            Connection.DiscardInput();
        }

        if (chipInfo is null)
        {
            var magic = await Connection.ReadRegisterAsync(Esp32ChipInfo.MagicRegister, cancellationToken).ConfigureAwait(false);
            chipInfo = Esp32ChipInfo.FromMagic(magic)
                ?? throw new IoTHubMqttException(ErrorIds.Esp32UnknownChip, $"The chip on {Connection.Port.Name} is not supported (magic 0x{magic:X8}).", "Supported: ESP32, ESP32-S2, -S3, -C3, -C6, -H2.", Connection.Port.Name);
        }

        return (chipInfo, await ReadRevisionAsync(chipInfo, cancellationToken).ConfigureAwait(false));
    }

    private async Task<string?> ReadRevisionAsync(Esp32ChipInfo info, CancellationToken cancellationToken)
    {
        async Task<uint> Word(uint address) => await Connection.ReadRegisterAsync(address, cancellationToken).ConfigureAwait(false);
        if (info.Chip == Esp32Chip.Esp32)
        {
            // ESP32: eFuse BLK0 word 3 bit 15 (rev 1), word 5 bit 20 (rev 2), APB_CTRL_DATE bit 31 (rev 3); minor in word 5 bits 24-25.
            var word3 = await Word(0x3FF5A00C).ConfigureAwait(false);
            var word5 = await Word(0x3FF5A014).ConfigureAwait(false);
            var major = (word3 >> 15 & 1) == 0 ? 0 : (word5 >> 20 & 1) == 0 ? 1 : (await Word(0x3FF6607C).ConfigureAwait(false) >> 31 & 1) == 0 ? 2 : 3;
            return $"v{major}.{word5 >> 24 & 3}";
        }

        if (info.RevisionFields is not { } f)
        {
            return null;
        }

        var block1 = info.MacEfuseRegister;
        var majorValue = (await Word(block1 + (uint)(4 * f.MajorWord)).ConfigureAwait(false) >> f.MajorShift) & f.MajorMask;
        var low = (await Word(block1 + (uint)(4 * f.MinorLowWord)).ConfigureAwait(false) >> f.MinorLowShift) & f.MinorLowMask;
        var hi = f.MinorHiWord is { } hiWord ? (await Word(block1 + (uint)(4 * hiWord)).ConfigureAwait(false) >> f.MinorHiShift) & 1 : 0;
        return $"v{majorValue}.{(hi << 3) + low}";
    }

    private async Task<string> ReadMacAsync(CancellationToken cancellationToken)
    {
        var low = await Connection.ReadRegisterAsync(ChipInfo.MacEfuseRegister, cancellationToken).ConfigureAwait(false);
        var high = await Connection.ReadRegisterAsync(ChipInfo.MacEfuseRegister + 4, cancellationToken).ConfigureAwait(false);
        byte[] mac = [(byte)(high >> 8), (byte)high, (byte)(low >> 24), (byte)(low >> 16), (byte)(low >> 8), (byte)low];
        return string.Join(':', mac.Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
    }

    private async Task LoadStubAsync(CancellationToken cancellationToken)
    {
        var stub = Esp32Stub.Load(ChipInfo);
        options.Log?.Invoke("Uploading the flasher stub");
        foreach (var (address, segment) in new[] { (stub.TextStart, stub.Text), (stub.DataStart, stub.Data) })
        {
            var blocks = (segment.Length + RamBlockSize - 1) / RamBlockSize;
            await Connection.CommandAsync(Esp32Command.MemBegin((uint)segment.Length, (uint)blocks, RamBlockSize, address), cancellationToken: cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < blocks; i++)
            {
                var block = segment.AsSpan(i * RamBlockSize, Math.Min(RamBlockSize, segment.Length - (i * RamBlockSize)));
                await Connection.CommandAsync(Esp32Command.MemData(block, (uint)i), cancellationToken: cancellationToken).ConfigureAwait(false);
            }
        }

        // MEM_END is answered, then the stub starts and greets with the one unsolicited frame of the protocol, OHAI
        // (serial-protocol documentation, "Initial Synchronisation"). A lost MEM_END answer does not mean the stub did not
        // start: the greeting alone proves it runs.
        await Connection.SendRawAsync(Esp32Command.MemEnd(stub.Entry).Encode(), cancellationToken).ConfigureAwait(false);
        var deadline = Time.GetTimestamp() + (long)(StubStartTimeout.TotalSeconds * Time.TimestampFrequency);
        while (true)
        {
            var left = Time.GetElapsedTime(Time.GetTimestamp(), deadline);
            var frame = left <= TimeSpan.Zero ? null : await Connection.ReadFrameAsync(left, cancellationToken).ConfigureAwait(false);
            if (frame is null)
            {
                throw Esp32Errors.Protocol(Connection.Port.Name, "the flasher stub did not start (no OHAI greeting).");
            }

            if (frame.AsSpan().SequenceEqual("OHAI"u8))
            {
                break;
            }

            if (Esp32Response.TryDecode(frame) is { Opcode: Esp32Opcode.MemEnd } answer && answer.Status(0) is { Ok: false, Error: var error })
            {
                throw Esp32Errors.RomError("MemEnd", Esp32RomError.FromCode(error), error);
            }
        }

        Connection.IsStub = true;
        options.Log?.Invoke("Flasher stub running");
    }

    /// <summary>MEM_END's answer (its ROM timeout) plus the time the stub takes to greet.</summary>
    private static readonly TimeSpan StubStartTimeout = TimeSpan.FromSeconds(3);

    private TimeProvider Time => Connection.Time;

    private async Task ChangeBaudAsync(int baud, CancellationToken cancellationToken)
    {
        // The stub takes the new rate and the one it talks at now (serial-protocol documentation, CHANGE_BAUDRATE).
        var old = Connection.Port.BaudRate;
        await Connection.CommandAsync(Esp32Command.ChangeBaudRate((uint)baud, (uint)old), cancellationToken: cancellationToken).ConfigureAwait(false);
        await Task.Delay(TimeSpan.FromMilliseconds(50), Time, cancellationToken).ConfigureAwait(false);
        await Connection.Port.SetBaudRateAsync(baud, cancellationToken).ConfigureAwait(false);
        await Task.Delay(TimeSpan.FromMilliseconds(20), Time, cancellationToken).ConfigureAwait(false);
        Connection.DiscardInput();
        if (await ProbeAsync(cancellationToken).ConfigureAwait(false))
        {
            options.Log?.Invoke($"Changed baud rate to {baud}");
            return;
        }

        // No answer at the new rate: a board that acknowledged the change but kept its rate still answers at the old one.
        await Connection.Port.SetBaudRateAsync(old, cancellationToken).ConfigureAwait(false);
        Connection.DiscardInput();
        if (await ProbeAsync(cancellationToken).ConfigureAwait(false))
        {
            (options.Warn ?? options.Log)?.Invoke($"The board on {Connection.Port.Name} did not switch to {baud} baud (it still answers at {old}); writing at {old} baud, which is slower.");
            return;
        }

        throw new IoTHubMqttException(ErrorIds.Esp32BaudRateFailed,
            $"The board on {Connection.Port.Name} stopped answering after switching to {baud} baud (and does not answer at {old} either).",
            "Use a lower -Baud (460800 or 115200): the USB-serial bridge or the cable may not carry this rate. Reset the board (EN) before retrying.", Connection.Port.Name);
    }

    /// <summary>Reads the flash JEDEC id (RDID 0x9F) through the SPI user-command registers.</summary>
    public async Task<uint> ReadFlashIdAsync(CancellationToken cancellationToken = default)
    {
        var c = ChipInfo;
        var b = c.SpiRegisterBase;
        var oldUsr = await Connection.ReadRegisterAsync(b + c.SpiUsrOffset, cancellationToken).ConfigureAwait(false);
        var oldUsr2 = await Connection.ReadRegisterAsync(b + c.SpiUsr2Offset, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(b + c.SpiMisoDlenOffset, 24 - 1, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(b + c.SpiUsrOffset, SpiUsrCommand | SpiUsrMiso, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(b + c.SpiUsr2Offset, (7u << 28) | 0x9F, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(b + c.SpiW0Offset, 0, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(b, SpiCmdUsr, cancellationToken).ConfigureAwait(false);
        var done = false;
        for (var i = 0; i < 10 && !done; i++)
        {
            done = (await Connection.ReadRegisterAsync(b, cancellationToken).ConfigureAwait(false) & SpiCmdUsr) == 0;
        }

        if (!done)
        {
            throw Esp32Errors.Protocol(Connection.Port.Name, "the SPI flash did not finish the read-id command.");
        }

        var id = await Connection.ReadRegisterAsync(b + c.SpiW0Offset, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(b + c.SpiUsrOffset, oldUsr, cancellationToken).ConfigureAwait(false);
        await Connection.WriteRegisterAsync(b + c.SpiUsr2Offset, oldUsr2, cancellationToken).ConfigureAwait(false);
        return id & 0xFFFFFF;
    }

    /// <summary>
    /// Writes regions: all are checked first (size, chip id), nothing is written if one is wrong. Regions whose flash
    /// MD5 already matches are skipped unless Force. Each written region is verified by MD5.
    /// </summary>
    public async Task<IReadOnlyList<Esp32RegionResult>> WriteAsync(IReadOnlyList<Esp32FlashRegion> regions, CancellationToken cancellationToken = default)
    {
        var prepared = Prepare(regions);
        var expected = prepared.Select(r => Convert.ToHexString(MD5.HashData(r.Data)).ToLowerInvariant()).ToList();
        var unchanged = new bool[prepared.Count];
        if (!options.Force)
        {
            for (var i = 0; i < prepared.Count; i++)
            {
                var region = prepared[i];
                var current = await WithRetriesAsync(region, "SPI_FLASH_MD5", () => FlashMd5Async(region.Offset, (uint)region.Data.Length, cancellationToken), cancellationToken).ConfigureAwait(false);
                unchanged[i] = current == expected[i];
            }
        }

        // Compress the changed regions in the background while the stub uploads at 115200 baud.
        var compressed = prepared.Select((r, i) => unchanged[i] ? null : Task.Run(() => Compress(r.Data), cancellationToken)).ToList();
        if (unchanged.Any(u => !u))
        {
            await EnsureStubAsync(cancellationToken).ConfigureAwait(false);
        }

        var results = new List<Esp32RegionResult>();
        var total = prepared.Sum(r => (long)r.Data.Length);
        long before = 0;
        for (var i = 0; i < prepared.Count; i++)
        {
            var region = prepared[i];
            if (unchanged[i])
            {
                options.Log?.Invoke($"{region.Name} @ 0x{region.Offset:X}: unchanged (MD5 {expected[i]}), skipped");
                Report("Verifying", region, before + region.Data.Length, total, 0);
                results.Add(Result(region, Esp32RegionStatus.Skipped, expected[i], TimeSpan.Zero, 0, 0));
            }
            else
            {
                results.Add(await WriteRegionAsync(region, await compressed[i]!.ConfigureAwait(false), expected[i], before, total, cancellationToken).ConfigureAwait(false));
            }

            options.RegionCompleted?.Invoke(results[^1]);

            before += region.Data.Length;
        }

        if (options.ResetAfter)
        {
            await HardResetAsync(cancellationToken).ConfigureAwait(false);
        }

        return results;
    }

    /// <summary>Validates and patches regions (bootloader header) without writing: what -WhatIf shows.</summary>
    public IReadOnlyList<Esp32FlashRegion> Prepare(IReadOnlyList<Esp32FlashRegion> regions)
    {
        ArgumentNullException.ThrowIfNull(regions);
        var list = new List<Esp32FlashRegion>();
        foreach (var region in regions.OrderBy(r => r.Offset))
        {
            Esp32RegionCheck.Validate(region);
            if ((long)region.Offset + region.Data.Length > Device.FlashSize)
            {
                throw Esp32Errors.ImageTooLarge(region.Name, region.Offset, region.Data.Length, Device.FlashSize - Math.Min(region.Offset, Device.FlashSize), $"{Device.FlashSizeText} flash");
            }

            if (region.Kind == Esp32RegionKind.PartitionTable)
            {
                NanoFramework.PartitionTable.Parse(region.Data).EnsureFits(Device.FlashSize);
            }

            var imageChip = region.Kind == Esp32RegionKind.Image ? Esp32ImageValidator.Validate(region.Data, region.Name).ChipId : Esp32Image.ChipId(region.Data);
            if (imageChip is { } id && id != ChipInfo.ImageChipId && (region.Kind == Esp32RegionKind.Image || region.Offset == ChipInfo.BootloaderOffset || region.Offset >= 0x10000))
            {
                throw Esp32Errors.ImageChipMismatch(region.Name, id, ChipInfo.Chip);
            }

            if (list.Count > 0 && list[^1].Offset + (uint)list[^1].Data.Length > region.Offset)
            {
                throw Esp32Errors.InvalidImage(ErrorIds.Esp32RegionsOverlap, $"Regions '{list[^1].Name}' and '{region.Name}' overlap at 0x{region.Offset:X}.", region.Name);
            }

            var data = region.Offset == ChipInfo.BootloaderOffset && region.Data[0] == Esp32Image.Magic
                ? Esp32Image.PatchHeader(region.Data, options.FlashMode, options.FlashSize ?? (Device.FlashSizeDetected ? Device.FlashSize : null), FrequencyCode())
                : region.Data;
            list.Add(region with { Data = data });
        }

        return list;
    }

    private int? FrequencyCode()
    {
        if (options.FlashFrequencyCode is not null || options.FlashFrequency is not { } name)
        {
            return options.FlashFrequencyCode;
        }

        return Esp32Image.FrequencyCode(ChipInfo.Chip, name) ?? throw Esp32Errors.InvalidImage(ErrorIds.Esp32FlashFrequencyNotSupported,
            $"The {ChipInfo.Name} has no '{name}' flash frequency; it takes {string.Join(", ", Esp32Image.FrequencyNames(ChipInfo.Chip))}.", name);
    }

    private async Task<Esp32RegionResult> WriteRegionAsync(Esp32FlashRegion region, byte[] compressed, string expected, long before, long total, CancellationToken cancellationToken)
    {
        var started = Time.GetTimestamp();
        long wireBefore = WireBytesWritten;
        Exception? last = null;
        for (var attempt = 1; attempt <= Math.Max(1, options.Retries); attempt++)
        {
            try
            {
                await WriteCompressedAsync(region, compressed, before, total, cancellationToken).ConfigureAwait(false);

                // The MD5 request only reads: a lost or garbled answer is asked again, never a reason to rewrite the region.
                var actual = await WithRetriesAsync(region, "SPI_FLASH_MD5", () => FlashMd5Async(region.Offset, (uint)region.Data.Length, cancellationToken), cancellationToken).ConfigureAwait(false);
                if (actual == expected)
                {
                    options.Log?.Invoke($"{region.Name} @ 0x{region.Offset:X}: {region.Data.Length} bytes written and verified (MD5 {expected})");
                    return Result(region, Esp32RegionStatus.Written, expected, Time.GetElapsedTime(started), WireBytesWritten - wireBefore, attempt);
                }

                last = Esp32Errors.Md5Mismatch(region.Name, region.Offset, expected, actual);
                options.Log?.Invoke($"{region.Name} @ 0x{region.Offset:X}: MD5 mismatch on attempt {attempt}, rewriting");
            }
            catch (IoTHubMqttException ex) when (ex.ErrorId == ErrorIds.Esp32PortClosed)
            {
                throw Esp32Errors.SyncLost(Connection.Port.Name, "the write", region.Name, region.Offset, ex);
            }
            catch (IoTHubMqttException ex) when (ex.IsTransient)
            {
                // A lost or garbled answer, or a block the loader rejected: the region is written again.
                last = ex;
                options.Log?.Invoke($"{region.Name} @ 0x{region.Offset:X}: {ex.Message} Re-syncing (attempt {attempt}).");
                if (!await ProbeAsync(cancellationToken).ConfigureAwait(false))
                {
                    throw Esp32Errors.SyncLost(Connection.Port.Name, "the write", region.Name, region.Offset, ex);
                }
            }
        }

        if (last is IoTHubMqttException { ErrorId: ErrorIds.Esp32Md5Mismatch } mismatch)
        {
            throw mismatch;
        }

        throw last is IoTHubMqttException { ErrorId: ErrorIds.Esp32Timeout }
            ? Esp32Errors.Timeout(Connection.Port.Name, "the write", region.Name, region.Offset)
            : Esp32Errors.SyncLost(Connection.Port.Name, "the write", region.Name, region.Offset, last);
    }

    private async Task WriteCompressedAsync(Esp32FlashRegion region, byte[] compressed, long before, long total, CancellationToken cancellationToken)
    {
        var blockSize = Connection.IsStub ? StubBlockSize : RomBlockSize;
        var blocks = (compressed.Length + blockSize - 1) / blockSize;
        var eraseSize = Connection.IsStub ? (uint)region.Data.Length : (uint)(((region.Data.Length + RomBlockSize - 1) / RomBlockSize) * RomBlockSize);
        var encryptedWord = !Connection.IsStub && ChipInfo.RomBeginTakesEncryptedFlag;
        await Connection.CommandAsync(
            Esp32Command.FlashDeflBegin(eraseSize, (uint)blocks, (uint)blockSize, region.Offset, encryptedWord),
            timeout: Esp32Command.TimeoutFor(Esp32Opcode.FlashDeflBegin, Connection.IsStub ? 0 : eraseSize), region: region.Name, offset: region.Offset, cancellationToken: cancellationToken).ConfigureAwait(false);
        var started = Time.GetTimestamp();
        var ratio = (double)region.Data.Length / compressed.Length;
        for (var i = 0; i < blocks; i++)
        {
            var block = compressed.AsSpan(i * blockSize, Math.Min(blockSize, compressed.Length - (i * blockSize)));
            await Connection.CommandAsync(
                Esp32Command.FlashDeflData(block, (uint)i),
                timeout: Esp32Command.TimeoutFor(Esp32Opcode.FlashDeflData, (long)(block.Length * ratio)), region: region.Name, offset: region.Offset + (uint)Math.Min(region.Data.Length, (long)(i * blockSize * ratio)), cancellationToken: cancellationToken).ConfigureAwait(false);
            var done = Math.Min(region.Data.Length, (long)((i + 1) * blockSize * ratio));
            Report("Writing", region, before + done, total, done / Math.Max(Time.GetElapsedTime(started).TotalSeconds, 1e-6));
        }
    }

    /// <summary>MD5 of a flash range, lowercase hex.</summary>
    public async Task<string> FlashMd5Async(uint offset, uint length, CancellationToken cancellationToken = default)
    {
        var dataLength = Connection.IsStub ? 16 : 32;
        var response = await Connection.CommandAsync(Esp32Command.SpiFlashMd5(offset, length), dataLength, Esp32Command.TimeoutFor(Esp32Opcode.SpiFlashMd5, length), cancellationToken: cancellationToken).ConfigureAwait(false);
        return Connection.IsStub
            ? Convert.ToHexString(response.Data, 0, 16).ToLowerInvariant()
            : System.Text.Encoding.ASCII.GetString(response.Data, 0, 32).ToLowerInvariant();
    }

    /// <summary>Erases the whole flash (stub).</summary>
    public async Task EraseFlashAsync(CancellationToken cancellationToken = default)
    {
        await RequireStubAsync("erase the flash", cancellationToken).ConfigureAwait(false);
        Report("Erasing", "flash", 0, 0, Device.FlashSize, 0);
        await Connection.CommandAsync(Esp32Command.EraseFlash(), cancellationToken: cancellationToken).ConfigureAwait(false);
        Report("Erasing", "flash", 0, Device.FlashSize, Device.FlashSize, 0);
    }

    /// <summary>Erases a 4 KiB-aligned region (stub).</summary>
    public async Task EraseRegionAsync(uint offset, uint size, CancellationToken cancellationToken = default)
    {
        await RequireStubAsync("erase a region", cancellationToken).ConfigureAwait(false);
        if (offset % 0x1000 != 0 || size % 0x1000 != 0 || size == 0)
        {
            throw new IoTHubMqttException(ErrorIds.Esp32RegionNotAligned, $"Offset 0x{offset:X} and size 0x{size:X} must be non-zero multiples of 4 KiB (0x1000).", null, offset);
        }

        if ((long)offset + size > Device.FlashSize)
        {
            throw Esp32Errors.ImageTooLarge("erase", offset, size, Device.FlashSize - Math.Min(offset, Device.FlashSize), $"{Device.FlashSizeText} flash");
        }

        await Connection.CommandAsync(Esp32Command.EraseRegion(offset, size), timeout: Esp32Command.TimeoutFor(Esp32Opcode.EraseRegion, size), region: "erase", offset: offset, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads flash (stub READ_FLASH), checking the MD5 the stub sends at the end.</summary>
    public async Task<byte[]> ReadFlashAsync(uint offset, uint length, CancellationToken cancellationToken = default)
    {
        await RequireStubAsync("read the flash", cancellationToken).ConfigureAwait(false);
        if ((long)offset + length > Device.FlashSize || length == 0)
        {
            throw Esp32Errors.ImageTooLarge("read", offset, length, Device.FlashSize - Math.Min(offset, Device.FlashSize), $"{Device.FlashSizeText} flash");
        }

        const uint blockSize = 0x1000;
        await Connection.CommandAsync(Esp32Command.ReadFlash(offset, length, blockSize, 64), region: "read", offset: offset, cancellationToken: cancellationToken).ConfigureAwait(false);
        var data = new byte[length];
        var received = 0;
        var started = Time.GetTimestamp();
        while (received < length)
        {
            var frame = await Connection.ReadFrameAsync(TimeSpan.FromSeconds(3), cancellationToken).ConfigureAwait(false)
                ?? throw Esp32Errors.Timeout(Connection.Port.Name, "READ_FLASH", "read", offset + received);
            if (frame.Length > length - received)
            {
                throw Esp32Errors.Protocol(Connection.Port.Name, $"READ_FLASH sent {frame.Length} bytes at 0x{offset + received:X}, more than requested.");
            }

            frame.CopyTo(data, received);
            received += frame.Length;
            await Connection.SendRawAsync(Esp32Command.Words((uint)received), cancellationToken).ConfigureAwait(false);
            Report("Reading", "read", offset, received, length, received / Math.Max(Time.GetElapsedTime(started).TotalSeconds, 1e-6));
        }

        var digest = await Connection.ReadFrameAsync(TimeSpan.FromSeconds(3), cancellationToken).ConfigureAwait(false)
            ?? throw Esp32Errors.Timeout(Connection.Port.Name, "READ_FLASH digest", "read", offset);
        var expected = MD5.HashData(data);
        if (!digest.AsSpan().SequenceEqual(expected))
        {
            throw Esp32Errors.Md5Mismatch("read", offset, Convert.ToHexString(digest).ToLowerInvariant(), Convert.ToHexString(expected).ToLowerInvariant());
        }

        return data;
    }

    /// <summary>Reads and parses the partition table the board holds at 0x8000.</summary>
    public async Task<NanoFramework.PartitionTable> ReadPartitionTableAsync(CancellationToken cancellationToken = default) =>
        NanoFramework.PartitionTable.Parse(await ReadFlashAsync(NanoFramework.PartitionTable.DefaultOffset, NanoFramework.PartitionTable.MaxLength, cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Writes <paramref name="data"/> to the partition the board's table names (by name, or by type and subtype), the rest
    /// of the partition erased; bounds-checked against the partition, verified by MD5 like any region.
    /// </summary>
    public async Task<Esp32RegionResult> WritePartitionAsync(Func<NanoFramework.PartitionTable, NanoFramework.PartitionEntry?> select, byte[] data, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(select);
        var table = await ReadPartitionTableAsync(cancellationToken).ConfigureAwait(false);
        var partition = select(table)
            ?? throw new IoTHubMqttException(ErrorIds.PartitionNotFound, $"The board's partition table has no partition for '{name}'.", "Flash a firmware package whose partition table has it.", name);
        return (await WriteAsync([NanoFramework.FirmwarePackage.PartitionRegion(partition, data, name)], cancellationToken).ConfigureAwait(false))[0];
    }

    /// <summary>Runs the application (hard reset through RTS; no effect on ports without control lines).</summary>
    public async Task HardResetAsync(CancellationToken cancellationToken = default)
    {
        if (chip?.ForceDownloadRegister is { } register)
        {
            // A download forced over USB would win over the reset: clear it first. A board that does not answer any more is
            // reset all the same.
            try
            {
                await Connection.CommandAsync(Esp32Command.WriteReg(register, 0, mask: ForceDownloadBoot), timeout: TimeSpan.FromMilliseconds(500), cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (IoTHubMqttException ex) when (ex.ErrorId is ErrorIds.Esp32Timeout or ErrorIds.Esp32CommandFailed or ErrorIds.Esp32ProtocolError or ErrorIds.Esp32PortClosed)
            {
                options.Log?.Invoke($"Could not clear the forced-download bit: {ex.Message}");
            }
        }

        await ResetStrategy.HardResetAsync(Connection.Port, Time, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>RTC_CNTL_FORCE_DOWNLOAD_BOOT, bit 0 of RTC_CNTL_OPTION1_REG.</summary>
    private const uint ForceDownloadBoot = 0x1;

    public async ValueTask DisposeAsync()
    {
        if (ownsPort)
        {
            await Connection.Port.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>zlib (RFC 1950) at the highest compression: what the loader's inflater expects.</summary>
    public static byte[] Compress(ReadOnlySpan<byte> data)
    {
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            zlib.Write(data);
        }

        return output.ToArray();
    }

    private async Task<T> WithRetriesAsync<T>(Esp32FlashRegion region, string what, Func<Task<T>> action, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await action().ConfigureAwait(false);
            }
            catch (IoTHubMqttException ex) when (ex.IsTransient && attempt < Math.Max(1, options.Retries))
            {
                options.Log?.Invoke($"{what} for {region.Name}: {ex.Message} Retrying.");
                if (!await ProbeAsync(cancellationToken).ConfigureAwait(false))
                {
                    throw Esp32Errors.SyncLost(Connection.Port.Name, what, region.Name, region.Offset, ex);
                }
            }
        }
    }

    /// <summary>Re-syncs after a timeout: drops input and checks the loader answers a register read.</summary>
    private async Task<bool> ProbeAsync(CancellationToken cancellationToken)
    {
        for (var i = 0; i < 4; i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50 * (i + 1)), Time, cancellationToken).ConfigureAwait(false);
            Connection.DiscardInput();
            try
            {
                await Connection.CommandAsync(Esp32Command.ReadReg(Esp32ChipInfo.MagicRegister), timeout: TimeSpan.FromMilliseconds(500), cancellationToken: cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (IoTHubMqttException ex) when (ex.IsTransient)
            {
            }
        }

        return false;
    }

    private async Task RequireStubAsync(string what, CancellationToken cancellationToken)
    {
        await EnsureStubAsync(cancellationToken).ConfigureAwait(false);
        if (!Connection.IsStub)
        {
            throw new IoTHubMqttException(ErrorIds.Esp32StubRequired, $"To {what} the flasher stub must run.", "Do not disable the stub for this operation.", Connection.Port.Name);
        }
    }

    private Esp32RegionResult Result(Esp32FlashRegion region, Esp32RegionStatus status, string md5, TimeSpan duration, long wire, int attempts) => new()
    {
        Port = Connection.Port.Name,
        Name = region.Name,
        Offset = region.Offset,
        Length = region.Data.Length,
        Status = status,
        Md5 = md5,
        Verified = true,
        WireBytes = wire,
        Duration = duration,
        Attempts = attempts,
    };

    private void Report(string activity, Esp32FlashRegion region, long done, long total, double rate) => Report(activity, region.Name, region.Offset, done, total, rate);

    private void Report(string activity, string name, uint offset, long done, long total, double rate) =>
        options.Progress?.Report(new Esp32FlashProgress(activity, name, offset, done, total, rate));
}
