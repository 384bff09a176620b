using IoTHubMqtt.Core.Esp32.Transport;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>How to put the chip into its serial bootloader before syncing.</summary>
public enum Esp32ResetMode
{
    /// <summary>
    /// By port: USB-JTAG-serial for Espressif's native USB (PID 0x1001); on Unix serial ports the tight reset (both lines at
    /// once), then the classic one; the classic one elsewhere; none for socket://.
    /// </summary>
    Auto,
    Classic,
    UsbJtagSerial,

    /// <summary>The board is already in the bootloader (BOOT held, or a network bridge).</summary>
    None,
}

/// <summary>
/// A reset sequence on the DTR/RTS lines, written step by step as Espressif documents it. On the auto-reset circuit of
/// Espressif's boards DTR drives IO0 and RTS drives EN, both inverted: line asserted (true) = pin LOW; both asserted together
/// do not reset the chip (https://docs.espressif.com/projects/esptool/en/latest/esp32/advanced-topics/boot-mode-selection.html#automatic-bootloader).
/// The sequences are the ones esptool's configuration-file documentation spells out as custom_reset_sequence strings
/// (https://docs.espressif.com/projects/esptool/en/latest/esp32/esptool/configuration-file.html#custom-reset-sequence)
/// and esptool-js (Apache-2.0) runs.
/// </summary>
public abstract class ResetStrategy
{
    /// <summary>esptool's reset_delay: how long IO0 stays low after EN rises (0.05 s; the retry adds 0.5 s for slow EN circuits).</summary>
    public static readonly TimeSpan DefaultResetDelay = TimeSpan.FromMilliseconds(50);

    public static readonly TimeSpan ExtraResetDelay = TimeSpan.FromMilliseconds(550);

    /// <summary>Espressif's USB VID and the PID of the USB-JTAG-serial peripheral (C3, S3, C6, H2).</summary>
    public const ushort UsbJtagSerialProductId = 0x1001;

    public abstract string Name { get; }

    public abstract Task ResetAsync(IEsp32Port port, TimeProvider time, CancellationToken cancellationToken = default);

    /// <summary>The strategies to try in turn for <paramref name="mode"/> on this port (esptool's order for the same port).</summary>
    public static IReadOnlyList<ResetStrategy> For(Esp32ResetMode mode, IEsp32Port port, ushort? usbProductId = null, bool? windows = null)
    {
        ArgumentNullException.ThrowIfNull(port);
        var onWindows = windows ?? OperatingSystem.IsWindows();
        ResetStrategy[] classic = [new ClassicReset(DefaultResetDelay, onWindows), new ClassicReset(ExtraResetDelay, onWindows)];
        return mode switch
        {
            Esp32ResetMode.Classic => classic,
            Esp32ResetMode.UsbJtagSerial => [new UsbJtagSerialReset(onWindows)],
            Esp32ResetMode.None => [new NoReset()],
            _ when !port.HasControlLines => [new NoReset()],
            _ when usbProductId == UsbJtagSerialProductId => [new UsbJtagSerialReset(onWindows)],
            _ when port.CanSetControlLinesTogether && !onWindows => [new TightReset(DefaultResetDelay), new TightReset(ExtraResetDelay), .. classic],
            _ => classic,
        };
    }

    /// <summary>Runs the application: EN pulsed low with IO0 high (esptool's hard reset: R1, 0.1 s, R0).</summary>
    public static async Task HardResetAsync(IEsp32Port port, TimeProvider time, CancellationToken cancellationToken = default, bool? windows = null)
    {
        ArgumentNullException.ThrowIfNull(port);
        var lines = new Lines(port, windows ?? OperatingSystem.IsWindows(), cancellationToken);
        await lines.Dtr(false).ConfigureAwait(false); // IO0 = HIGH
        await lines.Rts(true).ConfigureAwait(false); // EN = LOW, chip in reset
        await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        await lines.Rts(false).ConfigureAwait(false); // EN = HIGH, chip boots the app
    }

    /// <summary>
    /// Writes one line at a time and remembers DTR. On Windows, adapters on the usbser.sys driver (Espressif's native USB,
    /// CDC-ACM bridges) send the SET_CONTROL_LINE_STATE request only when DTR is written: after every RTS change DTR is
    /// written again with the value it has, so the RTS change reaches the chip (esptool does the same on Windows).
    /// </summary>
    private protected readonly struct Lines(IEsp32Port port, bool windows, CancellationToken cancellationToken)
    {
        private readonly bool[] dtr = [false];

        public async Task Dtr(bool value)
        {
            dtr[0] = value;
            await port.SetControlLinesAsync(value, null, cancellationToken).ConfigureAwait(false);
        }

        public async Task Rts(bool value)
        {
            await port.SetControlLinesAsync(null, value, cancellationToken).ConfigureAwait(false);
            if (windows)
            {
                await port.SetControlLinesAsync(dtr[0], null, cancellationToken).ConfigureAwait(false);
            }
        }

        public Task Both(bool dtrValue, bool rtsValue)
        {
            dtr[0] = dtrValue;
            return port.SetControlLinesTogetherAsync(dtrValue, rtsValue, cancellationToken).AsTask();
        }
    }
}

/// <summary>The classic auto-reset: D0|R1|W0.1|D1|R0|W{delay}|D0 (IO0 held low while EN rises).</summary>
public sealed class ClassicReset(TimeSpan resetDelay, bool windows = false) : ResetStrategy
{
    public override string Name => $"classic ({resetDelay.TotalMilliseconds:0} ms)";

    public override async Task ResetAsync(IEsp32Port port, TimeProvider time, CancellationToken cancellationToken = default)
    {
        var lines = new Lines(port, windows, cancellationToken);
        await lines.Dtr(false).ConfigureAwait(false); // IO0 = HIGH
        await lines.Rts(true).ConfigureAwait(false); // EN = LOW, chip in reset
        await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        await lines.Dtr(true).ConfigureAwait(false); // IO0 = LOW
        await lines.Rts(false).ConfigureAwait(false); // EN = HIGH, chip out of reset, samples IO0 low
        await Task.Delay(resetDelay, time, cancellationToken).ConfigureAwait(false);
        await lines.Dtr(false).ConfigureAwait(false); // IO0 = HIGH, done
    }
}

/// <summary>
/// The classic reset with both lines written in one call where the OS allows it (the "U" step of esptool's reset
/// sequences, Unix only): U0,0|U1,1|U0,1|W0.1|U1,0|W{delay}|U0,0|D0. Some USB-UART bridges glitch EN when the lines change one
/// after the other; changing both at once avoids the in-between state.
/// </summary>
public sealed class TightReset(TimeSpan resetDelay) : ResetStrategy
{
    public override string Name => $"tight ({resetDelay.TotalMilliseconds:0} ms)";

    public override async Task ResetAsync(IEsp32Port port, TimeProvider time, CancellationToken cancellationToken = default)
    {
        var lines = new Lines(port, windows: false, cancellationToken);
        await lines.Both(false, false).ConfigureAwait(false); // idle
        await lines.Both(true, true).ConfigureAwait(false); // both asserted: the circuit keeps EN high
        await lines.Both(false, true).ConfigureAwait(false); // IO0 = HIGH, EN = LOW: chip in reset
        await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        await lines.Both(true, false).ConfigureAwait(false); // IO0 = LOW, EN = HIGH: chip out of reset
        await Task.Delay(resetDelay, time, cancellationToken).ConfigureAwait(false);
        await lines.Both(false, false).ConfigureAwait(false); // IO0 = HIGH, done
        await lines.Dtr(false).ConfigureAwait(false); // DTR written alone too: some drivers need it to release IO0
    }
}

/// <summary>
/// Espressif's native USB-JTAG-serial (VID 0x303A, PID 0x1001): the peripheral decodes the lines itself, DTR as IO0 and RTS
/// as reset. Sequence R0|D0|W0.1|D1|R0|W0.1|R1|D0|R1|W0.1|R0|D0: the reset is entered by asserting RTS before releasing DTR,
/// so the lines pass through DTR=RTS=1 (not 0/0, which would let the chip run its app before the reset), and RTS is written
/// again so that drivers which forward DTR only with an RTS write see it.
/// </summary>
public sealed class UsbJtagSerialReset(bool windows = false) : ResetStrategy
{
    public override string Name => "USB-JTAG-serial";

    public override async Task ResetAsync(IEsp32Port port, TimeProvider time, CancellationToken cancellationToken = default)
    {
        var lines = new Lines(port, windows, cancellationToken);
        await lines.Rts(false).ConfigureAwait(false);
        await lines.Dtr(false).ConfigureAwait(false); // idle
        await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        await lines.Dtr(true).ConfigureAwait(false); // IO0 = LOW
        await lines.Rts(false).ConfigureAwait(false);
        await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        await lines.Rts(true).ConfigureAwait(false); // reset, through DTR=RTS=1
        await lines.Dtr(false).ConfigureAwait(false);
        await lines.Rts(true).ConfigureAwait(false); // RTS again: DTR reaches the chip with it
        await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        await lines.Rts(false).ConfigureAwait(false);
        await lines.Dtr(false).ConfigureAwait(false); // out of reset: the chip boots into the loader
    }
}

/// <summary>No line changes: the chip is already waiting in its bootloader.</summary>
public sealed class NoReset : ResetStrategy
{
    public override string Name => "none";

    public override Task ResetAsync(IEsp32Port port, TimeProvider time, CancellationToken cancellationToken = default) => Task.CompletedTask;
}
