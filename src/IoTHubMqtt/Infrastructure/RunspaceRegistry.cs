using System.Collections.Concurrent;
using System.Management.Automation.Runspaces;

namespace IoTHubMqtt.Infrastructure;

/// <summary>Things a cmdlet started in each runspace (simulators, emulators), so its Stop- cmdlet with no argument stops the last one still running there.</summary>
internal sealed class RunspaceRegistry<T>(Func<T, bool> isRunning)
    where T : class
{
    private readonly ConcurrentDictionary<Guid, Stack<T>> started = new();

    private static Guid Key => Runspace.DefaultRunspace?.InstanceId ?? Guid.Empty;

    public void Add(T item)
    {
        var stack = started.GetOrAdd(Key, _ => new Stack<T>());
        lock (stack)
        {
            stack.Push(item);
        }
    }

    /// <summary>The most recently started item of this runspace that still runs, or null.</summary>
    public T? Last()
    {
        if (!started.TryGetValue(Key, out var stack))
        {
            return null;
        }

        lock (stack)
        {
            while (stack.Count > 0 && !isRunning(stack.Peek()))
            {
                stack.Pop();
            }

            return stack.Count > 0 ? stack.Peek() : null;
        }
    }
}
