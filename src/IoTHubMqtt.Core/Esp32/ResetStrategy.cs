using IoTHubMqtt.Core.Esp32.Transport;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>How to put the chip into its serial bootloader before syncing.</summary>
public enum Esp32ResetMode
{
    /// <summary>Classic DTR/RTS for USB-UART bridges, USB-JTAG-serial for Espressif's native USB, none for socket://.</summary>
    Auto,
    Classic,
    UsbJtagSerial,

    /// <summary>The board is already in the bootloader (BOOT held, or a network bridge).</summary>
    None,
}

/// <summary>
/// A reset sequence on the DTR/RTS lines. On the usual auto-reset circuit DTR drives IO0 and RTS drives EN,
/// both inverted: line asserted (true) = pin LOW.
/// </summary>
public abstract class ResetStrategy
{
    public abstract string Name { get; }

    public abstract Task ResetAsync(IEsp32Port port, TimeProvider time, CancellationToken cancellationToken = default);

    /// <summary>The strategies to try in turn for <paramref name="mode"/> on this port.</summary>
    public static IReadOnlyList<ResetStrategy> For(Esp32ResetMode mode, IEsp32Port port, ushort? usbProductId = null) => mode switch
    {
        Esp32ResetMode.Classic => [new ClassicReset(TimeSpan.FromMilliseconds(50)), new ClassicReset(TimeSpan.FromMilliseconds(550))],
        Esp32ResetMode.UsbJtagSerial => [new UsbJtagSerialReset()],
        Esp32ResetMode.None => [new NoReset()],
        _ when !port.HasControlLines => [new NoReset()],
        _ when usbProductId == 0x1001 => [new UsbJtagSerialReset(), new ClassicReset(TimeSpan.FromMilliseconds(50))],
        _ => [new ClassicReset(TimeSpan.FromMilliseconds(50)), new ClassicReset(TimeSpan.FromMilliseconds(550))],
    };

    /// <summary>Runs the application: pulse EN low with IO0 high.</summary>
    public static async Task HardResetAsync(IEsp32Port port, TimeProvider time, CancellationToken cancellationToken = default)
    {
        await port.SetControlLinesAsync(dtr: false, rts: true, cancellationToken).ConfigureAwait(false); // IO0 = HIGH, EN = LOW (chip in reset)
        await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        await port.SetControlLinesAsync(dtr: null, rts: false, cancellationToken).ConfigureAwait(false); // EN = HIGH, chip boots the app
    }
}

/// <summary>The USB-UART auto-reset circuit: hold IO0 low while EN rises.</summary>
public sealed class ClassicReset(TimeSpan bootDelay) : ResetStrategy
{
    public override string Name => $"classic ({bootDelay.TotalMilliseconds:0} ms)";

    public override async Task ResetAsync(IEsp32Port port, TimeProvider time, CancellationToken cancellationToken = default)
    {
        await port.SetControlLinesAsync(dtr: false, rts: true, cancellationToken).ConfigureAwait(false); // IO0 = HIGH, EN = LOW (chip in reset)
        await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        await port.SetControlLinesAsync(dtr: true, rts: false, cancellationToken).ConfigureAwait(false); // IO0 = LOW, EN = HIGH (chip out of reset, sees IO0 low)
        await Task.Delay(bootDelay, time, cancellationToken).ConfigureAwait(false);
        await port.SetControlLinesAsync(dtr: false, rts: null, cancellationToken).ConfigureAwait(false); // IO0 = HIGH, done
    }
}

/// <summary>Espressif's native USB-JTAG-serial (VID 0x303A, PID 0x1001): the lines are decoded by the USB peripheral, not a circuit.</summary>
public sealed class UsbJtagSerialReset : ResetStrategy
{
    public override string Name => "USB-JTAG-serial";

    public override async Task ResetAsync(IEsp32Port port, TimeProvider time, CancellationToken cancellationToken = default)
    {
        await port.SetControlLinesAsync(dtr: false, rts: false, cancellationToken).ConfigureAwait(false); // idle
        await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        await port.SetControlLinesAsync(dtr: true, rts: false, cancellationToken).ConfigureAwait(false); // IO0 = LOW
        await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        await port.SetControlLinesAsync(dtr: false, rts: true, cancellationToken).ConfigureAwait(false); // reset with IO0 latched LOW
        await port.SetControlLinesAsync(dtr: true, rts: true, cancellationToken).ConfigureAwait(false); // RTS then DTR, so DTR reaches the chip
        await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        await port.SetControlLinesAsync(dtr: false, rts: false, cancellationToken).ConfigureAwait(false); // release: chip boots into the loader
    }
}

/// <summary>No line changes: the chip is already waiting in its bootloader.</summary>
public sealed class NoReset : ResetStrategy
{
    public override string Name => "none";

    public override Task ResetAsync(IEsp32Port port, TimeProvider time, CancellationToken cancellationToken = default) => Task.CompletedTask;
}
