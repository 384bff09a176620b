using System.Collections.Concurrent;
using System.Reflection;
using Xunit.v3;

namespace IoTHubMqtt.Testing;

/// <summary>
/// Fails a test when a task's exception went unobserved (nobody awaited the task or read its exception), as MQTTnet's
/// test environment does: such an exception is a failure the code under test lost. Apply it to a test assembly
/// (<c>[assembly: FailOnUnobservedTaskExceptions]</c>). After each test it collects garbage and runs finalizers, which is
/// when the runtime reports unobserved exceptions, and fails the test if any arrived since the test began. Tests run
/// in parallel, so an exception may belong to a test that ran beside this one: the message shows the exception itself.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly | AttributeTargets.Class | AttributeTargets.Method)]
public sealed class FailOnUnobservedTaskExceptionsAttribute : BeforeAfterTestAttribute
{
    private static readonly ConcurrentQueue<Exception> Unobserved = new();
    private static int registered;

    public override void Before(MethodInfo methodUnderTest, IXunitTest test)
    {
        if (Interlocked.Exchange(ref registered, 1) == 0)
        {
            TaskScheduler.UnobservedTaskException += (_, e) =>
            {
                if (!IsLostByMqttnetServer(e.Exception))
                {
                    Unobserved.Enqueue(e.Exception);
                }
            };
        }
    }

    public override void After(MethodInfo methodUnderTest, IXunitTest test)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var found = new List<Exception>();
        while (Unobserved.TryDequeue(out var exception))
        {
            found.Add(exception);
        }

        if (found.Count > 0)
        {
            throw new UnobservedTaskExceptionsException(found);
        }
    }

    /// <summary>
    /// MQTTnet's server (under the emulator) queues packets for a client and fails the queued item when the client's
    /// socket breaks mid-write (MqttConnectedClient.SendPacketsLoop: packetBusItem.Fail), but nobody awaits the items
    /// it queues for itself (PUBACKs, deliveries), so their exception goes unobserved. That is the library's way with
    /// a client that leaves, not a failure of the code under test, and the only exception let through.
    /// </summary>
    private static bool IsLostByMqttnetServer(AggregateException exception) =>
        exception.InnerExceptions.Count > 0
        && exception.InnerExceptions.All(e =>
            e.GetType().FullName is "MQTTnet.Exceptions.MqttCommunicationException" or "MQTTnet.Exceptions.MqttCommunicationTimedOutException"
            && e.StackTrace is { } trace
            && trace.Contains("MQTTnet.Server.Internal.MqttConnectedClient.SendPacketsLoop", StringComparison.Ordinal));
}

/// <summary>Unobserved task exceptions seen while a test ran.</summary>
public sealed class UnobservedTaskExceptionsException(IReadOnlyList<Exception> exceptions)
    : Exception($"{exceptions.Count} task exception(s) went unobserved while this test (or one running beside it) ran: "
        + string.Join(" | ", exceptions.Select(e => e.InnerException is { } inner && e is AggregateException ? inner.ToString() : e.ToString())), exceptions[0])
{
    public IReadOnlyList<Exception> Exceptions { get; } = exceptions;
}
