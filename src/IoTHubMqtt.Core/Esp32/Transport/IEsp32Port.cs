namespace IoTHubMqtt.Core.Esp32.Transport;

/// <summary>
/// The byte seam under the flasher: a serial port, a raw TCP socket or an RFC 2217 server. Everything above
/// (SLIP, commands, connection) works on this interface, so a simulator can stand in for a board.
/// </summary>
public interface IEsp32Port : IAsyncDisposable
{
    /// <summary>What the user passed (COM5, /dev/ttyUSB0, socket://host:port).</summary>
    string Name { get; }

    /// <summary>False for raw TCP: DTR/RTS changes are ignored.</summary>
    bool HasControlLines { get; }

    int BaudRate { get; }

    /// <summary>Reads what is available, waiting at most <paramref name="timeout"/>; returns 0 on timeout.</summary>
    ValueTask<int> ReadAsync(Memory<byte> buffer, TimeSpan timeout, CancellationToken cancellationToken = default);

    ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default);

    /// <summary>Sets DTR and/or RTS (null leaves a line as it is), one after the other.</summary>
    ValueTask SetControlLinesAsync(bool? dtr, bool? rts, CancellationToken cancellationToken = default);

    /// <summary>True when <see cref="SetControlLinesTogetherAsync"/> changes both lines in one step (a local Unix tty).</summary>
    bool CanSetControlLinesTogether => false;

    /// <summary>Sets DTR and RTS in one step where the port can (TIOCMSET on Unix); otherwise one after the other.</summary>
    ValueTask SetControlLinesTogetherAsync(bool dtr, bool rts, CancellationToken cancellationToken = default) => SetControlLinesAsync(dtr, rts, cancellationToken);

    ValueTask SetBaudRateAsync(int baudRate, CancellationToken cancellationToken = default);

    /// <summary>Drops buffered input.</summary>
    void DiscardInput();
}
