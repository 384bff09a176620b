namespace IoTHubMqtt.Core.Esp32;

/// <summary>A value to suggest for a serial port argument, with a one-line description.</summary>
public sealed record SerialPortSuggestion(string Value, string Description, bool IsDirectory = false);

/// <summary>
/// Port names to suggest while a user types a -Port argument: boards found by USB id first, then every serial port
/// the system reports, then file system entries when the text is a path (a socat pty link, /dev/pts/N), then the
/// socket:// and rfc2217:// forms. Fast and never throws: a failing source is left out.
/// </summary>
public static class SerialPortSuggestions
{
    private const int MaxPathEntries = 200;

    public static IReadOnlyList<SerialPortSuggestion> For(string prefix)
    {
        prefix ??= string.Empty;
        var comparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        var result = new List<SerialPortSuggestion>();
        var seen = new HashSet<string>(OperatingSystem.IsWindows() ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal);

        void Add(string value, string description, bool isDirectory = false)
        {
            if (value.StartsWith(prefix, comparison) && seen.Add(value))
            {
                result.Add(new SerialPortSuggestion(value, description, isDirectory));
            }
        }

        if (!prefix.Contains("://", StringComparison.Ordinal))
        {
            foreach (var candidate in Try(Esp32PortEnumerator.Enumerate))
            {
                Add(candidate.Port, $"{candidate.Port}: ESP board bridge {candidate.UsbId}");
            }

            foreach (var port in Try(SystemPorts).OrderBy(PortRank).ThenBy(p => p, StringComparer.Ordinal))
            {
                Add(port, $"{port}: serial port");
            }

            if (LooksLikePath(prefix))
            {
                foreach (var entry in Try(() => PathEntries(prefix)))
                {
                    Add(entry.Value, entry.Description, entry.IsDirectory);
                }
            }
        }

        Add("socket://", "socket://host:port — a serial port shared over TCP as raw bytes (ser2net raw, esp_rfc2217_server's raw mode)");
        Add("rfc2217://", "rfc2217://host:port — a serial port shared over TCP with RFC 2217 control (esp_rfc2217_server, ser2net telnet)");
        return result;
    }

    private static IReadOnlyList<T> Try<T>(Func<IReadOnlyList<T>> source)
    {
        try
        {
            return source();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.SecurityException or PlatformNotSupportedException or InvalidOperationException or ArgumentException or NotSupportedException)
        {
            return [];
        }
    }

    private static IReadOnlyList<string> SystemPorts() => System.IO.Ports.SerialPort.GetPortNames();

    /// <summary>USB serial ports first (where boards are), then the rest (ttyS* are mostly motherboard UARTs).</summary>
    private static int PortRank(string port)
    {
        var name = Path.GetFileName(port);
        return name.StartsWith("ttyUSB", StringComparison.Ordinal) || name.StartsWith("ttyACM", StringComparison.Ordinal)
            || name.StartsWith("cu.", StringComparison.Ordinal) ? 0 : 1;
    }

    private static bool LooksLikePath(string prefix) =>
        prefix.StartsWith('/') || prefix.StartsWith('.') || prefix.StartsWith('~') || prefix.Contains(Path.DirectorySeparatorChar, StringComparison.Ordinal)
        || (OperatingSystem.IsWindows() && prefix.Contains('/', StringComparison.Ordinal));

    /// <summary>Entries of the typed directory whose names start with the typed rest, as typed (not expanded).</summary>
    private static IReadOnlyList<SerialPortSuggestion> PathEntries(string prefix)
    {
        var cut = prefix.LastIndexOfAny(OperatingSystem.IsWindows() ? ['/', '\\'] : ['/']);
        var typedDirectory = cut < 0 ? string.Empty : prefix[..(cut + 1)];
        var namePrefix = prefix[(cut + 1)..];
        var directory = typedDirectory.Length == 0 ? "." : typedDirectory;
        if (directory.StartsWith('~'))
        {
            directory = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + directory[1..];
        }

        if (!Directory.Exists(directory))
        {
            return [];
        }

        var comparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        var result = new List<SerialPortSuggestion>();
        foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos())
        {
            if (!entry.Name.StartsWith(namePrefix, comparison))
            {
                continue;
            }

            var isDirectory = entry is DirectoryInfo && entry.LinkTarget is null;
            var value = typedDirectory + entry.Name + (isDirectory ? "/" : string.Empty);
            var description = entry.LinkTarget is { } target ? $"{value} -> {target}" : value;
            result.Add(new SerialPortSuggestion(value, description, isDirectory));
            if (result.Count >= MaxPathEntries)
            {
                break;
            }
        }

        result.Sort((a, b) => StringComparer.Ordinal.Compare(a.Value, b.Value));
        return result;
    }
}
