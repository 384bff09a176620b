using System.Collections.Concurrent;
using System.Management.Automation.Runspaces;
using System.Runtime.InteropServices;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Emulator;

namespace IoTHubMqtt.Commands.Emulator;

/// <summary>
/// The emulators started in each runspace, so Stop-IoTHubEmulator with no argument stops the last one started there;
/// and the process-wide clean-up: SIGTERM (what CI runners and 'kill' send) and SIGHUP (a closed terminal) stop every
/// running emulator, which deletes its temporary folder and CA key, before the process ends as the signal asks. pwsh
/// does not run .NET's exit handlers on these signals by itself.
/// </summary>
internal static class EmulatorSession
{
    private static readonly ConcurrentDictionary<Guid, Stack<IoTHubEmulator>> Started = new();
    private static readonly ConcurrentDictionary<IoTHubEmulator, string> EndpointFiles = new();
    private static readonly object SignalsLock = new();
    private static List<PosixSignalRegistration>? signals;

    private static Guid Key => Runspace.DefaultRunspace?.InstanceId ?? Guid.Empty;

    public static void Add(IoTHubEmulator emulator)
    {
        RegisterSignals();
        var stack = Started.GetOrAdd(Key, _ => new Stack<IoTHubEmulator>());
        lock (stack)
        {
            stack.Push(emulator);
        }
    }

    /// <summary>The most recently started emulator of this runspace that still runs, or null.</summary>
    public static IoTHubEmulator? Last()
    {
        if (!Started.TryGetValue(Key, out var stack))
        {
            return null;
        }

        lock (stack)
        {
            while (stack.Count > 0 && !stack.Peek().IsRunning)
            {
                stack.Pop();
            }

            return stack.Count > 0 ? stack.Peek() : null;
        }
    }

    /// <summary>
    /// Starts an emulator and adds it to this runspace's; its log lines go to <paramref name="verbose"/> until it has
    /// started (later ones have no pipeline to go to).
    /// </summary>
    public static async Task<IoTHubEmulator> StartAsync(IoTHubEmulatorOptions options, Action<string> verbose, CancellationToken cancellationToken)
    {
        var logging = 1;
        options.Log = (level, line) =>
        {
            if (Volatile.Read(ref logging) == 1)
            {
                verbose($"{level}: {line}");
            }
        };
        try
        {
            var emulator = await IoTHubEmulator.StartAsync(options, cancellationToken).ConfigureAwait(false);
            Add(emulator);
            return emulator;
        }
        finally
        {
            Volatile.Write(ref logging, 0);
        }
    }

    /// <summary>
    /// Writes the emulator's endpoints to <paramref name="path"/> (owner-only), deleted when it stops; when the file cannot
    /// be written, stops the emulator and fails with EmulatorEndpointFileFailed.
    /// </summary>
    public static void PublishEndpoints(IoTHubEmulator emulator, string path)
    {
        try
        {
            EmulatorEndpoints.Write(emulator, path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Stop(emulator);
            throw new IoTHubMqttException(ErrorIds.EmulatorEndpointFileFailed,
                $"The endpoint file '{path}' could not be written: {ex.Message}", "Pass a path in a folder you can write to.", path);
        }

        DeleteOnStop(emulator, path);
    }

    /// <summary>
    /// Announces the emulator (<paramref name="announce"/> writes it to the pipeline), serves until <paramref name="stop"/>
    /// (Ctrl+C, SIGTERM), then stops the emulator. A stop that lands while the announcement is still in the pipeline (a
    /// downstream command still running) stops the emulator just the same: its endpoint file and CA key never outlive it.
    /// </summary>
    public static void ServeUntil(IoTHubEmulator emulator, CancellationToken stop, Action announce, Action<string> verbose)
    {
        try
        {
            announce();
            verbose($"Serving {emulator} until Ctrl+C (or SIGTERM).");
            stop.WaitHandle.WaitOne();
        }
        finally
        {
            Stop(emulator);
        }
    }

    /// <summary>Deletes <paramref name="path"/> (the emulator's endpoint file, which holds the owner key) when the emulator stops.</summary>
    public static void DeleteOnStop(IoTHubEmulator emulator, string path) => EndpointFiles[emulator] = path;

    /// <summary>Stops the emulator and deletes its endpoint file; never throws (clean-up on the way out).</summary>
    public static void Stop(IoTHubEmulator emulator)
    {
        try
        {
            emulator.Dispose();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or UnauthorizedAccessException)
        {
        }

        if (EndpointFiles.TryRemove(emulator, out var path))
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    private static void RegisterSignals()
    {
        if (OperatingSystem.IsWindows() || OperatingSystem.IsBrowser())
        {
            return;
        }

        lock (SignalsLock)
        {
            // The handler does not cancel the signal: once the emulators are stopped the process ends as asked.
            signals ??= [PosixSignalRegistration.Create(PosixSignal.SIGTERM, StopAll), PosixSignalRegistration.Create(PosixSignal.SIGHUP, StopAll)];
        }
    }

    private static void StopAll(PosixSignalContext context)
    {
        foreach (var stack in Started.Values)
        {
            IoTHubEmulator[] emulators;
            lock (stack)
            {
                emulators = [.. stack];
            }

            foreach (var emulator in emulators)
            {
                Stop(emulator);
            }
        }
    }
}
