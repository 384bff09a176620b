using System.Collections.Concurrent;
using IoTHubDevice.Logic.Device;

namespace IoTHubMqtt.FirmwareDevice;

/// <summary>The app's log lines, kept for assertions and diagnostics.</summary>
public sealed class QueueLog : ILog
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public void Info(string message) => Lines.Enqueue("info: " + message);

    public void Warning(string message) => Lines.Enqueue("warn: " + message);
}
