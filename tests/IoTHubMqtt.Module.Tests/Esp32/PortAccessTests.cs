using System.Diagnostics;
using System.Runtime.InteropServices;
using IoTHubMqtt.Esp32.Simulator;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Esp32;

/// <summary>
/// A serial port the user may not open, and one another program holds: real ptys made by socat, opened through
/// System.IO.Ports by the module's host running as an unprivileged user (the tests run as root, which neither
/// permissions nor TIOCEXCL stop).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class PortAccessTests : IDisposable
{
    private const int Nobody = 65534;
    private readonly string home = Directory.CreateTempSubdirectory("esp32-nobody-").FullName;

    public void Dispose() => Directory.Delete(home, recursive: true);

    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEffectiveUserId();

    [DllImport("libc", EntryPoint = "open", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int Open(string path, int flags);

    [DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static extern int Ioctl(int fd, nuint request, nint argument);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);

    [DllImport("libc", EntryPoint = "chown", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int Chown(string path, uint owner, uint group);

    private void RequireRootOnLinux()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "The pty and dialout checks are Linux-specific.");
        Assert.SkipUnless(GetEffectiveUserId() == 0, "Needs root to run the host as another user and to change the pty's owner (the tests run as root in CI).");
        File.SetUnixFileMode(home, (UnixFileMode)0x1FF); // 0777: the unprivileged host's HOME
    }

    // Get-Esp32Device on the port, in the module's host, as nobody (no supplementary groups, so not in dialout).
    private (string StdOut, string StdErr) GetEsp32DeviceAsNobody(string port)
    {
        var script = Path.Combine(home, "open-port.ps1");
        File.WriteAllText(script, """
            try { Get-Esp32Device -Port $args[0] -ErrorAction Stop }
            catch { 'ErrorId: ' + $_.FullyQualifiedErrorId.Split(',')[0]; 'Fix: ' + $_.ErrorDetails.RecommendedAction }
            """);
        var start = new ProcessStartInfo("setpriv")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = home,
        };
        foreach (var argument in new[] { $"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", "env", $"HOME={home}", $"DOTNET_CLI_HOME={home}", "dotnet", TestPaths.HostAssembly, "-File", script, port })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("The host did not exit.");
        }

        return (stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    [Fact]
    public async Task PortOfTheDialoutGroup_OpenedByAUserOutsideIt_PermissionDeniedWithTheDialoutFix()
    {
        RequireRootOnLinux();
        await using var server = new SimulatorServer();
        using var pty = new PtyBridge(server);
        var device = new FileInfo(pty.DevicePath).ResolveLinkTarget(returnFinalTarget: true)!.FullName;
        Assert.Equal(0, Chown(device, 0, 20)); // root:dialout (gid 20), as udev sets up /dev/ttyUSB*
        File.SetUnixFileMode(device, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);

        var (stdout, stderr) = GetEsp32DeviceAsNobody(pty.DevicePath);

        Assert.Contains("ErrorId: Esp32PermissionDenied", stdout, StringComparison.Ordinal);
        Assert.Contains("dialout", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PortHeldExclusivelyByAnotherProgram_PortBusyWithTheFix()
    {
        RequireRootOnLinux();
        await using var server = new SimulatorServer();
        using var pty = new PtyBridge(server);
        var device = new FileInfo(pty.DevicePath).ResolveLinkTarget(returnFinalTarget: true)!.FullName;
        File.SetUnixFileMode(device, (UnixFileMode)0x1B6); // 0666: anyone may open it
        // Another program has the port open the way .NET's SerialPort and pyserial open it: O_NOCTTY, then TIOCEXCL.
        const int readWriteNoCtty = 0x2 | 0x100;
        const nuint tiocexcl = 0x540C;
        var fd = Open(device, readWriteNoCtty);
        Assert.True(fd >= 0, "open failed: " + Marshal.GetLastPInvokeError());
        try
        {
            Assert.Equal(0, Ioctl(fd, tiocexcl, 0));

            var (stdout, stderr) = GetEsp32DeviceAsNobody(pty.DevicePath);

            Assert.Contains("ErrorId: Esp32PortBusy", stdout, StringComparison.Ordinal);
            Assert.Contains("serial monitor", stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
        }
        finally
        {
            // The exclusive flag belongs to the tty, which socat keeps open: clear it (TIOCNXCL) before closing.
            Ioctl(fd, tiocexcl + 1, 0);
            Close(fd);
        }

        // Released: the same user opens it (and finds the simulated board).
        var (after, _) = GetEsp32DeviceAsNobody(pty.DevicePath);
        Assert.DoesNotContain("ErrorId:", after, StringComparison.Ordinal);
        Assert.Contains("ESP32", after, StringComparison.Ordinal);
    }
}
