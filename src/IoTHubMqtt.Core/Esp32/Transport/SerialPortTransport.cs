using System.IO.Ports;

namespace IoTHubMqtt.Core.Esp32.Transport;

/// <summary>A local serial port through System.IO.Ports (COM5, /dev/ttyUSB0, /dev/cu.usbserial-…, a pty).</summary>
public sealed class SerialPortTransport : PumpedPort
{
    private readonly SerialPort port;

    private SerialPortTransport(string name, SerialPort port)
        : base(name)
    {
        this.port = port;
        StartPump();
    }

    public override bool HasControlLines => true;

    public override int BaudRate => port.BaudRate;

    /// <summary>Opens the port; maps "busy", "permission denied" and "not found" to errors with the fix.</summary>
    public static SerialPortTransport Open(string name, int baudRate = 115200)
    {
        if (!OperatingSystem.IsWindows() && !File.Exists(name))
        {
            throw Esp32Errors.PortNotFound(name, null);
        }

        var port = new SerialPort(name, baudRate, Parity.None, 8, StopBits.One)
        {
            Handshake = Handshake.None,
            ReadTimeout = 200,
            WriteTimeout = 10000,
            DtrEnable = false,
            RtsEnable = false,
        };
        try
        {
            port.Open();
            port.DiscardInBuffer();
            return new SerialPortTransport(name, port);
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException or ArgumentException)
        {
            port.Dispose();
            throw MapOpenError(name, ex, OperatingSystem.IsWindows());
        }
    }

    /// <summary>Turns the exceptions SerialPort.Open throws into errors that say what to do.</summary>
    internal static Exception MapOpenError(string name, Exception ex, bool windows) => ex switch
    {
        // Windows reports a port held by another program as access denied. On Unix, .NET reports both EACCES (no permission)
        // and EBUSY (another program opened the tty with TIOCEXCL, as .NET and pyserial do) as access denied: the file's
        // permissions tell them apart.
        UnauthorizedAccessException => windows || UnixFileAccess.CanReadWrite(name) ? Esp32Errors.PortBusy(name, ex) : Esp32Errors.PermissionDenied(name, ex),
        IOException when ex.Message.Contains("busy", StringComparison.OrdinalIgnoreCase) || ex.Message.Contains("in use", StringComparison.OrdinalIgnoreCase) => Esp32Errors.PortBusy(name, ex),
        _ => Esp32Errors.PortNotFound(name, ex),
    };

    protected override ValueTask<int> ReadCoreAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        // Blocking reads with a short ReadTimeout on the pump thread: portable across the Windows and Unix implementations.
        var array = new byte[buffer.Length];
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var n = port.Read(array, 0, array.Length);
                array.AsMemory(0, n).CopyTo(buffer);
                return ValueTask.FromResult(n);
            }
            catch (TimeoutException)
            {
            }
        }

        return ValueTask.FromResult(0);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var array = data.ToArray();
        port.Write(array, 0, array.Length);
        return ValueTask.CompletedTask;
    }

    public override ValueTask SetControlLinesAsync(bool? dtr, bool? rts, CancellationToken cancellationToken = default)
    {
        try
        {
            if (dtr is { } d)
            {
                port.DtrEnable = d;
            }

            if (rts is { } r)
            {
                port.RtsEnable = r;
            }
        }
        catch (IOException)
        {
            // A pty or some USB bridges have no modem lines; the reset simply does nothing there.
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>On Linux and macOS both modem lines can be written with one TIOCMSET ioctl on the tty.</summary>
    public override bool CanSetControlLinesTogether => !OperatingSystem.IsWindows() && ModemLines.DescriptorOf(port) is not null;

    public override ValueTask SetControlLinesTogetherAsync(bool dtr, bool rts, CancellationToken cancellationToken = default)
    {
        if (ModemLines.DescriptorOf(port) is { } fd && ModemLines.TrySet(fd, dtr, rts))
        {
            return ValueTask.CompletedTask;
        }

        return SetControlLinesAsync(dtr, rts, cancellationToken);
    }

    public override ValueTask SetBaudRateAsync(int baudRate, CancellationToken cancellationToken = default)
    {
        port.BaudRate = baudRate;
        return ValueTask.CompletedTask;
    }

    protected override ValueTask CloseCoreAsync()
    {
        try
        {
            port.Close();
        }
        catch (IOException)
        {
        }

        port.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>access(2): whether this process's user may open a file for reading and writing (its permissions, not its state).</summary>
internal static class UnixFileAccess
{
    private const int ReadWrite = 4 | 2; // R_OK | W_OK

    public static bool CanReadWrite(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }

        try
        {
            return Access(path, ReadWrite) == 0;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "access", SetLastError = true, CharSet = System.Runtime.InteropServices.CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int Access(string path, int mode);
}

/// <summary>
/// The tty's modem lines through ioctl(2): TIOCMGET/TIOCMSET with TIOCM_DTR (0x002) and TIOCM_RTS (0x004), the values of
/// Linux's asm-generic/termios.h and macOS's sys/ttycom.h. System.IO.Ports keeps the descriptor private; when it cannot be
/// reached, callers fall back to writing the lines one after the other.
/// </summary>
internal static class ModemLines
{
    private const int Dtr = 0x002;
    private const int Rts = 0x004;

    public static int? DescriptorOf(SerialPort port)
    {
        if (OperatingSystem.IsWindows() || !port.IsOpen)
        {
            return null;
        }

        try
        {
            var stream = port.BaseStream;
            var field = stream.GetType().GetField("_handle", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance);
            return field?.GetValue(stream) is System.Runtime.InteropServices.SafeHandle { IsInvalid: false, IsClosed: false } handle ? (int)handle.DangerousGetHandle() : null;
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.Reflection.TargetException or NotSupportedException or FieldAccessException)
        {
            return null;
        }
    }

    public static bool TrySet(int fd, bool dtr, bool rts)
    {
        var (get, set) = OperatingSystem.IsMacOS() ? (0x4004746AUL, 0x8004746DUL) : (0x5415UL, 0x5418UL);
        try
        {
            var bits = 0;
            if (Ioctl(fd, (nuint)get, ref bits) != 0)
            {
                return false;
            }

            bits = (bits & ~(Dtr | Rts)) | (dtr ? Dtr : 0) | (rts ? Rts : 0);
            return Ioctl(fd, (nuint)set, ref bits) == 0;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static extern int Ioctl(int fd, nuint request, ref int argument);
}
