using System.Runtime.InteropServices;

namespace IoTHubMqtt.Pwsh.Tests;

/// <summary>
/// SIGINT for the pwsh children, as a terminal's foreground process has it. A child inherits an ignored SIGINT, and
/// bash ignores it for every command it starts in the background (<c>dotnet test &amp;</c>, a CI step's background job);
/// .NET then leaves it ignored, so pwsh would never see the Ctrl+C the tests send. When, and only when, this process
/// ignores SIGINT, its disposition goes back to the default, which children inherit.
/// </summary>
internal static partial class InterruptSignal
{
    private const int SigInt = 2;
    private static readonly nint Ignore = 1; // SIG_IGN
    private static readonly nint Default = 0; // SIG_DFL
    private static readonly Lazy<bool> Restored = new(RestoreIfIgnored);

    /// <summary>Makes children start with SIGINT at its default disposition (Linux and macOS; nothing elsewhere).</summary>
    public static void DefaultForChildren() => _ = Restored.Value;

    [LibraryImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static unsafe partial int SigAction(int signal, void* action, void* previous);

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial nint Signal(int signal, nint handler);

    private static unsafe bool RestoreIfIgnored()
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }

        // struct sigaction begins with the handler on Linux and macOS; 256 bytes hold the whole structure on both.
        var previous = stackalloc byte[256];
        if (SigAction(SigInt, null, previous) != 0 || *(nint*)previous != Ignore)
        {
            return false;
        }

        Signal(SigInt, Default);
        return true;
    }
}
