using System.Collections.Concurrent;
using System.Management.Automation;
using IoTHubMqtt.Core.Mqtt;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// A device's connection to the hub, returned by Connect-IoTHub and taken by the device cmdlets through
/// -Connection or the pipeline. Shows host, device and state only; it never holds a readable secret.
/// </summary>
public sealed class IoTHubDeviceConnection
{
    private readonly ConcurrentDictionary<string, ScriptBlock> handlers = new(StringComparer.Ordinal);

    private Action<string>? logSink;

    internal IoTHubDeviceConnection(Func<Action<string>, IoTHubDeviceClient> create)
    {
        // The client outlives the cmdlet that made it; its log lines go to whichever cmdlet uses it now (-Verbose).
        Client = create(message => Volatile.Read(ref logSink)?.Invoke(message));
    }

    internal IoTHubDeviceClient Client { get; }

    internal void AttachLog(Action<string> sink) => Volatile.Write(ref logSink, sink);

    internal void DetachLog(Action<string> sink) => Interlocked.CompareExchange(ref logSink, null, sink);

    public string HostName => Client.HostName;

    public string ConnectHostName => Client.ConnectHostName;

    public int Port => Client.Port;

    public string DeviceId => Client.DeviceId;

    public string? ModuleId => Client.ModuleId;

    public string Transport => Client.Transport.ToString();

    public string State => Client.State.ToString();

    public bool IsConnected => Client.State == IoTHubConnectionState.Connected;

    public DateTimeOffset? ConnectedSince => Client.ConnectedSince;

    public DateTimeOffset? TokenExpiresAt => Client.TokenExpiresAt;

    public int ReconnectCount => Client.ReconnectCount;

    public int TokenRenewalCount => Client.TokenRenewalCount;

    public string? LastError => Client.LastError;

    public string[] Methods => handlers.Keys.Order(StringComparer.Ordinal).ToArray();

    internal void SetHandler(string name, ScriptBlock handler)
    {
        handlers[name] = handler;
        Client.RegisterMethod(name);
    }

    internal bool RemoveHandler(string name)
    {
        Client.UnregisterMethod(name);
        return handlers.TryRemove(name, out _);
    }

    internal ScriptBlock? Handler(string name) => handlers.TryGetValue(name, out var handler) ? handler : null;

    public override string ToString() => ModuleId is null ? $"{DeviceId}@{HostName} ({State})" : $"{DeviceId}/{ModuleId}@{HostName} ({State})";
}

/// <summary>The connection Connect-IoTHub made last in each runspace: the default for -Connection.</summary>
internal static class DefaultConnection
{
    private static readonly ConcurrentDictionary<Guid, IoTHubDeviceConnection> Connections = new();

    private static Guid Key => System.Management.Automation.Runspaces.Runspace.DefaultRunspace?.InstanceId ?? Guid.Empty;

    public static IoTHubDeviceConnection? Current => Connections.TryGetValue(Key, out var connection) ? connection : null;

    public static void Set(IoTHubDeviceConnection connection) => Connections[Key] = connection;

    public static void Clear(IoTHubDeviceConnection connection) => ((ICollection<KeyValuePair<Guid, IoTHubDeviceConnection>>)Connections).Remove(new(Key, connection));
}
