using System.Diagnostics;

namespace IoTHubMqtt.Esp32.Simulator;

/// <summary>
/// A pseudo-terminal wired to a simulator with <c>socat</c>, so the host opens a real serial device
/// (System.IO.Ports) and the bytes reach the simulator. Throws when socat is not installed.
/// </summary>
public sealed class PtyBridge : IDisposable
{
    private readonly Process process;

    public PtyBridge(SimulatorServer server)
    {
        ArgumentNullException.ThrowIfNull(server);
        DevicePath = Path.Combine(Path.GetTempPath(), $"esp32sim-{Guid.NewGuid():N}");
        var start = new ProcessStartInfo("socat", ["-d", "-d", $"pty,raw,echo=0,link={DevicePath}", $"tcp:127.0.0.1:{server.TcpPort}"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("socat did not start.");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("socat is required for the pty tests (apt-get install socat).", ex);
        }

        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!File.Exists(DevicePath))
        {
            if (DateTime.UtcNow > deadline || process.HasExited)
            {
                Dispose();
                throw new InvalidOperationException($"socat did not create {DevicePath}.");
            }

            Thread.Sleep(20);
        }
    }

    /// <summary>The serial device to open (a symlink to /dev/pts/N).</summary>
    public string DevicePath { get; }

    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        process.Dispose();
        try
        {
            File.Delete(DevicePath);
        }
        catch (IOException)
        {
        }
    }
}
