using System.Collections.Concurrent;
using System.Management.Automation.Runspaces;
using IoTHubMqtt.Emulator;

namespace IoTHubMqtt.Commands.Emulator;

/// <summary>The emulators started in each runspace, so Stop-IoTHubEmulator with no argument stops the last one started there.</summary>
internal static class EmulatorSession
{
    private static readonly ConcurrentDictionary<Guid, Stack<IoTHubEmulator>> Started = new();

    private static Guid Key => Runspace.DefaultRunspace?.InstanceId ?? Guid.Empty;

    public static void Add(IoTHubEmulator emulator)
    {
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
}
