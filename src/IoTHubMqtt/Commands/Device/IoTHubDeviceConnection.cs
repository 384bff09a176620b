using System.Collections.Concurrent;
using System.Management.Automation;
using IoTHubMqtt.Core.Diagnostics;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>
/// A device's connection to the hub, returned by Connect-IoTHub and taken by the device cmdlets through
/// -Connection or the pipeline. Shows host, device and state only; it never holds a readable secret.
/// </summary>
public sealed class IoTHubDeviceConnection
{
    private readonly ConcurrentDictionary<string, ScriptBlock> handlers = new(StringComparer.Ordinal);

    private readonly ForwardingLogger logger = new();

    internal IoTHubDeviceConnection(Func<IIoTHubLogger, IoTHubDeviceClient> create)
    {
        // The client outlives the cmdlet that made it; its log lines go to whichever cmdlet uses it now (-Verbose, -Debug).
        Client = create(logger);
    }

    internal IoTHubDeviceClient Client { get; }

    /// <summary>
    /// Makes a client and connects it, its log lines going to <paramref name="cmdletLogger"/> meanwhile. A client that
    /// fails to connect is disposed.
    /// </summary>
    internal static async Task<IoTHubDeviceConnection> ConnectAsync(Func<IIoTHubLogger, IoTHubDeviceClient> create, IIoTHubLogger cmdletLogger, CancellationToken cancellationToken)
    {
        var connection = new IoTHubDeviceConnection(create);
        connection.AttachLog(cmdletLogger);
        try
        {
            await connection.Client.ConnectAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.Client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            connection.DetachLog(cmdletLogger);
        }
    }

    internal void AttachLog(IIoTHubLogger cmdletLogger) => logger.Attach(cmdletLogger);

    internal void DetachLog(IIoTHubLogger cmdletLogger) => logger.Detach(cmdletLogger);

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
