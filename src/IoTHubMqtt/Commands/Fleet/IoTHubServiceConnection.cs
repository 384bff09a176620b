using System.Collections.Concurrent;
using IoTHubMqtt.Core.Service;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// A connection to a hub's service API, returned by Connect-IoTHubService and taken by the fleet cmdlets through
/// -Connection (or the session default). Shows host, port and policy name only; it holds no readable secret.
/// </summary>
public sealed class IoTHubServiceConnection
{
    private Action<string>? logSink;

    internal IoTHubServiceConnection(Func<Action<string>, IoTHubServiceClient> create)
    {
        Client = create(message => Volatile.Read(ref logSink)?.Invoke(message));
    }

    internal IoTHubServiceClient Client { get; }

    internal void AttachLog(Action<string> sink) => Volatile.Write(ref logSink, sink);

    internal void DetachLog(Action<string> sink) => Interlocked.CompareExchange(ref logSink, null, sink);

    public string HostName => Client.HostName;

    public int Port => Client.Port;

    public string PolicyName => Client.PolicyName;

    /// <summary>True when made from an emulator object.</summary>
    public bool IsEmulator => Client.IsEmulator;

    public DateTimeOffset? TokenExpiresAt => Client.TokenExpiresAt;

    public int TokenRenewalCount => Client.TokenRenewalCount;

    /// <summary>Requests retried after throttling (429), a 5xx answer or a network fault.</summary>
    public int RetryCount => Client.RetryCount;

    /// <summary>429 answers the hub gave (each waited out as the hub asked, or ended its call with IoTHubThrottled).</summary>
    public int ThrottledCount => Client.ThrottledCount;

    /// <summary>Until when the hub throttles registry operations, or null.</summary>
    public DateTimeOffset? RegistryThrottledUntil => Client.RegistryThrottledUntil;

    /// <summary>The port devices connect to with MQTT/TLS when this is an emulator (0 otherwise).</summary>
    public int DeviceMqttPort { get; init; }

    /// <summary>The CA file of the emulator, for devices created through this connection (null for a real hub).</summary>
    public string? CaCertificatePath { get; init; }

    public override string ToString() => $"{HostName}:{Port} ({PolicyName})";
}

/// <summary>The connection Connect-IoTHubService made last in each runspace: the default for -Connection.</summary>
internal static class DefaultServiceConnection
{
    private static readonly ConcurrentDictionary<Guid, IoTHubServiceConnection> Connections = new();

    private static Guid Key => System.Management.Automation.Runspaces.Runspace.DefaultRunspace?.InstanceId ?? Guid.Empty;

    public static IoTHubServiceConnection? Current => Connections.TryGetValue(Key, out var connection) ? connection : null;

    public static void Set(IoTHubServiceConnection connection) => Connections[Key] = connection;
}
