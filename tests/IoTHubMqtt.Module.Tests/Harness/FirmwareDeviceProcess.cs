using System.Diagnostics;
using System.Text.Json;

namespace IoTHubMqtt.Module.Tests.Harness;

/// <summary>
/// A board running the firmware, played by the firmware-device process (tests/IoTHubMqtt.FirmwareDevice): it boots from a
/// dump of the board's flash as the board would (partition table, littlefs config partition, configuration file).
/// </summary>
public sealed class FirmwareDeviceProcess : IDisposable
{
    private readonly Process process;
    private readonly TaskCompletionSource<string> connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> errors = new();

    private FirmwareDeviceProcess(Process process)
    {
        this.process = process;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.StartsWith("connected ", StringComparison.Ordinal) == true)
            {
                connected.TrySetResult(e.Data["connected ".Length..]);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                errors.Enqueue(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>The configuration the firmware decodes from <paramref name="flash"/>, or the firmware's error id.</summary>
    public static (JsonElement? Configuration, string? Error) ReadConfiguration(byte[] flash)
    {
        var dump = WriteDump(flash);
        try
        {
            var start = Start("read-config", dump);
            start.StandardInput.Close();
            var stdout = start.StandardOutput.ReadToEndAsync();
            var stderr = start.StandardError.ReadToEndAsync();
            if (!start.WaitForExit(TimeSpan.FromSeconds(60)))
            {
                start.Kill(entireProcessTree: true);
                throw new TimeoutException("firmware-device read-config did not exit.");
            }

            return start.ExitCode == 0
                ? (JsonDocument.Parse(stdout.GetAwaiter().GetResult()).RootElement.Clone(), null)
                : (null, stderr.GetAwaiter().GetResult().Split(':')[0].Trim());
        }
        finally
        {
            File.Delete(dump);
        }
    }

    /// <summary>Boots a device from <paramref name="flash"/>; it runs until disposed (or <paramref name="seconds"/> pass).</summary>
    public static FirmwareDeviceProcess Run(byte[] flash, int seconds = 120)
    {
        var dump = WriteDump(flash);
        var process = Start("run", dump, seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return new FirmwareDeviceProcess(process) { DumpPath = dump };
    }

    private string? DumpPath { get; init; }

    /// <summary>The device id once the app is connected to its hub; null if it did not connect within <paramref name="timeout"/>.</summary>
    public string? WaitConnected(TimeSpan timeout) => connected.Task.Wait(timeout) ? connected.Task.Result : null;

    public string Errors => string.Join(Environment.NewLine, errors);

    public void Dispose()
    {
        try
        {
            process.StandardInput.Close();
            if (!process.WaitForExit(TimeSpan.FromSeconds(20)))
            {
                process.Kill(entireProcessTree: true);
            }
        }
        finally
        {
            process.Dispose();
            if (DumpPath is not null)
            {
                File.Delete(DumpPath);
            }
        }
    }

    private static string WriteDump(byte[] flash)
    {
        var path = Path.Combine(Path.GetTempPath(), $"esp32-flash-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, flash);
        return path;
    }

    private static Process Start(params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(TestPaths.FirmwareDeviceAssembly);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return Process.Start(start)!;
    }
}
