using System.Runtime.InteropServices;
using System.Text;

namespace IoTHubMqtt.Esp32.Simulator;

/// <summary>
/// A Linux pseudo-terminal pair opened in this process (posix_openpt, grantpt, unlockpt, ptsname_r): the host opens the
/// slave (/dev/pts/N) as a serial port through System.IO.Ports or any other serial library; the simulator reads and writes
/// the master. On Linux the termios ioctls on a pty master act on its slave (drivers/tty/tty_ioctl.c, tty_mode_ioctl), so
/// the master reads the line settings the host set on its end: <see cref="HostBaudRate"/> is the slave's output speed.
/// </summary>
internal sealed class PseudoTerminal : IDisposable
{
    // fcntl.h / asm-generic/termbits.h
    private const int OpenReadWrite = 0x2, OpenNoControllingTty = 0x100, OpenCloseOnExec = 0x80000;
    private const short PollIn = 0x1, PollHangUp = 0x10;
    private const int ErrnoInterrupted = 4, ErrnoIo = 5, ErrnoAgain = 11;

    // TCGETS2 = _IOR('T', 0x2A, struct termios2): struct termios2 is 4 tcflag_t, c_line, c_cc[19], c_ispeed, c_ospeed = 44
    // bytes (asm-generic/termbits.h); the speeds are plain numbers whether the host set a Bnnn code (the kernel fills them
    // in, tty_ioctl.c set_termios) or BOTHER with a custom rate (as System.IO.Ports does for rates without a Bnnn code).
    private const uint TcGets2 = 0x802C542A;
    private const int Termios2Size = 44, Termios2OutputSpeed = 40;

    private readonly object gate = new();
    private int master;

    private PseudoTerminal(int master, string slavePath)
    {
        this.master = master;
        SlavePath = slavePath;
    }

    /// <summary>The slave device the host opens, /dev/pts/N.</summary>
    public string SlavePath { get; }

    /// <summary>Why a pty cannot be made here, or null when it can (Linux, where TCGETS2 has the asm-generic number).</summary>
    public static string? UnsupportedReason =>
        !OperatingSystem.IsLinux() ? "An in-process serial pty is made on Linux only (the line speed is read from the pty master with TCGETS2)."
        : RuntimeInformation.ProcessArchitecture == Architecture.Ppc64le ? "An in-process serial pty is not made on ppc64le (its TCGETS2 ioctl number differs)."
        : null;

    /// <summary>Opens a pty pair and puts its line in raw mode (no echo, no line editing), as socat's <c>pty,raw,echo=0</c>.</summary>
    public static PseudoTerminal Open()
    {
        if (UnsupportedReason is { } reason)
        {
            throw new PlatformNotSupportedException(reason);
        }

        var fd = Native.PosixOpenPt(OpenReadWrite | OpenNoControllingTty | OpenCloseOnExec);
        if (fd < 0)
        {
            throw Failure("posix_openpt");
        }

        try
        {
            if (Native.GrantPt(fd) != 0)
            {
                throw Failure("grantpt");
            }

            if (Native.UnlockPt(fd) != 0)
            {
                throw Failure("unlockpt");
            }

            var name = new byte[256];
            if (Native.PtsNameR(fd, name, (nuint)name.Length) != 0)
            {
                throw Failure("ptsname_r");
            }

            var termios = new byte[256]; // larger than any libc's struct termios
            if (Native.TcGetAttr(fd, termios) != 0)
            {
                throw Failure("tcgetattr");
            }

            Native.CfMakeRaw(termios);
            if (Native.TcSetAttr(fd, 0 /* TCSANOW */, termios) != 0)
            {
                throw Failure("tcsetattr");
            }

            return new PseudoTerminal(fd, Encoding.ASCII.GetString(name, 0, Array.IndexOf(name, (byte)0)));
        }
        catch
        {
            Native.Close(fd);
            throw;
        }
    }

    /// <summary>The baud rate the host set on its end of the line (0 once closed).</summary>
    public int HostBaudRate
    {
        get
        {
            var termios2 = new byte[Termios2Size];
            return Master is { } fd && Native.Ioctl(fd, TcGets2, termios2) == 0 ? (int)BitConverter.ToUInt32(termios2, Termios2OutputSpeed) : 0;
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for the host's bytes. Returns the count read, 0 when nothing came in time, or
    /// -1 when no host has the slave open (after the host closed it, until one opens it again).
    /// </summary>
    public int Read(Span<byte> buffer, TimeSpan timeout)
    {
        if (Master is not { } fd)
        {
            return -1;
        }

        var poll = new PollFd[] { new() { Fd = fd, Events = PollIn } };
        var ready = Native.Poll(poll, 1, (int)timeout.TotalMilliseconds);
        if (ready < 0)
        {
            return Marshal.GetLastPInvokeError() == ErrnoInterrupted ? 0 : throw Failure("poll");
        }

        if (ready == 0)
        {
            return 0;
        }

        if ((poll[0].Revents & PollIn) == 0)
        {
            return (poll[0].Revents & PollHangUp) != 0 ? -1 : 0;
        }

        var n = (int)Native.Read(fd, ref MemoryMarshal.GetReference(buffer), (nuint)buffer.Length);
        if (n > 0)
        {
            return n;
        }

        return n == 0 ? -1 : Marshal.GetLastPInvokeError() switch
        {
            ErrnoIo => -1, // the slave was closed: the host hung up
            ErrnoInterrupted or ErrnoAgain => 0,
            _ => throw Failure("read"),
        };
    }

    /// <summary>True while the slave is open on the host's side (no hang-up on the master).</summary>
    public bool HostConnected
    {
        get
        {
            if (Master is not { } fd)
            {
                return false;
            }

            var poll = new PollFd[] { new() { Fd = fd, Events = PollIn } };
            return Native.Poll(poll, 1, 0) >= 0 && (poll[0].Revents & PollHangUp) == 0;
        }
    }

    /// <summary>Writes all of <paramref name="data"/> to the host (waiting while the host's input queue is full).</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            if (Master is not { } fd)
            {
                throw new IOException("The pty is closed.");
            }

            var n = (int)Native.Write(fd, ref MemoryMarshal.GetReference(data), (nuint)data.Length);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is ErrnoInterrupted or ErrnoAgain)
                {
                    continue;
                }

                throw new IOException(errno == ErrnoIo ? "The host closed the serial port." : $"write to the pty master failed (errno {errno}).");
            }

            data = data[n..];
        }
    }

    public void Dispose()
    {
        int fd;
        lock (gate)
        {
            fd = master;
            master = -1;
        }

        if (fd >= 0)
        {
            Native.Close(fd);
        }
    }

    private int? Master
    {
        get
        {
            lock (gate)
            {
                return master >= 0 ? master : null;
            }
        }
    }

    private static IOException Failure(string call) => new($"{call} failed (errno {Marshal.GetLastPInvokeError()}).");

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    private static class Native
    {
        [DllImport("libc", EntryPoint = "posix_openpt", SetLastError = true)]
        public static extern int PosixOpenPt(int flags);

        [DllImport("libc", EntryPoint = "grantpt", SetLastError = true)]
        public static extern int GrantPt(int fd);

        [DllImport("libc", EntryPoint = "unlockpt", SetLastError = true)]
        public static extern int UnlockPt(int fd);

        [DllImport("libc", EntryPoint = "ptsname_r", SetLastError = true)]
        public static extern int PtsNameR(int fd, [Out] byte[] buffer, nuint length);

        [DllImport("libc", EntryPoint = "tcgetattr", SetLastError = true)]
        public static extern int TcGetAttr(int fd, [Out] byte[] termios);

        [DllImport("libc", EntryPoint = "tcsetattr", SetLastError = true)]
        public static extern int TcSetAttr(int fd, int action, byte[] termios);

        [DllImport("libc", EntryPoint = "cfmakeraw")]
        public static extern void CfMakeRaw([In, Out] byte[] termios);

        [DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
        public static extern int Ioctl(int fd, nuint request, [Out] byte[] argument);

        [DllImport("libc", EntryPoint = "poll", SetLastError = true)]
        public static extern int Poll([In, Out] PollFd[] fds, nuint count, int timeout);

        [DllImport("libc", EntryPoint = "read", SetLastError = true)]
        public static extern nint Read(int fd, ref byte buffer, nuint count);

        [DllImport("libc", EntryPoint = "write", SetLastError = true)]
        public static extern nint Write(int fd, ref byte buffer, nuint count);

        [DllImport("libc", EntryPoint = "close")]
        public static extern int Close(int fd);
    }
}
