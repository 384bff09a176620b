using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Emulator.Storage;

/// <summary>
/// An emulator's claim on its data path: <c>emulator.lock</c> held open with no sharing for the emulator's lifetime (an
/// exclusive <c>flock</c> on Unix, a sharing lock on Windows), which the operating system drops when the process ends,
/// however it ends. Who holds it is written beside it, in <c>emulator.lock.json</c> (process id, host, start time),
/// because the locked file cannot be read by anyone else.
/// </summary>
internal sealed class DataPathLock : IDisposable
{
    public const string FileName = "emulator.lock";
    public const string HolderFileName = "emulator.lock.json";

    private readonly FileStream stream;

    private DataPathLock(FileStream stream) => this.stream = stream;

    /// <summary>Takes the lock on <paramref name="directory"/> or throws <c>EmulatorDataPathInUse</c> naming the holder.</summary>
    public static DataPathLock Acquire(string directory)
    {
        var path = Path.Combine(directory, FileName);
        FileStream stream;
        try
        {
            stream = PrivateFiles.Open(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex) when (IsHeldElsewhere(ex))
        {
            throw new IoTHubMqttException(ErrorIds.EmulatorDataPathInUse,
                $"The data path '{directory}' is in use by {Holder(directory)}; two emulators on one data path would overwrite each other's state.",
                "Stop that emulator first (Stop-IoTHubEmulator in its session, or end its process), or pass another -DataPath.", directory, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw DataPathNotWritable(directory, ex);
        }

        try
        {
            PrivateFiles.WriteAllText(Path.Combine(directory, HolderFileName), new JsonObject
            {
                ["processId"] = Environment.ProcessId,
                ["host"] = Environment.MachineName,
                ["started"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            }.ToJsonString());
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            stream.Dispose();
            throw DataPathNotWritable(directory, ex);
        }

        return new DataPathLock(stream);
    }

    public static IoTHubMqttException DataPathNotWritable(string directory, Exception ex) => new(
        ErrorIds.EmulatorDataPathNotWritable,
        $"The emulator cannot write to its data path '{directory}': {ex.Message}",
        "Make the folder writable by this user (or free space on its disk), or pass another -DataPath.", directory, ex);

    public void Dispose() => stream.Dispose();

    // EWOULDBLOCK from flock (11 on Linux, 35 on macOS); ERROR_SHARING_VIOLATION / ERROR_LOCK_VIOLATION on Windows.
    private static bool IsHeldElsewhere(IOException ex) => OperatingSystem.IsWindows()
        ? (ex.HResult & 0xFFFF) is 32 or 33
        : ex.HResult is 11 or 35;

    private static string Holder(string directory)
    {
        try
        {
            var holder = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, HolderFileName)));
            var pid = holder?["processId"]?.GetValue<int>() ?? 0;
            var host = holder?["host"]?.GetValue<string>() ?? "";
            var started = holder?["started"]?.GetValue<string>();
            if (pid > 0 && (host != Environment.MachineName || IsRunning(pid)))
            {
                return $"the emulator in process {pid.ToString(CultureInfo.InvariantCulture)} on host '{host}'" + (started is null ? "" : $", started {started}");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or InvalidOperationException or FormatException)
        {
            // no (readable) record of the holder: say what is known
        }

        return "another emulator (its process could not be identified)";
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
