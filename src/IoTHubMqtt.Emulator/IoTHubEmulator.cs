using System.Net;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Emulator.Certificates;
using IoTHubMqtt.Emulator.Http;
using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Emulator.Mqtt;
using IoTHubMqtt.Emulator.Provisioning;
using IoTHubMqtt.Emulator.Registry;
using IoTHubMqtt.Emulator.Service;
using IoTHubMqtt.Emulator.Storage;
using IoTHubMqtt.Emulator.Tiers;
using IoTHubMqtt.Emulator.Transport;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Server;

namespace IoTHubMqtt.Emulator;

/// <summary>
/// A local IoT Hub: MQTT device endpoint over TLS (and optionally plain TCP), MQTT over WebSockets and the service
/// REST API on one HTTPS port, and DPS over MQTT/TLS. Runs in-process (no ASP.NET), stops on dispose or process exit.
/// <see cref="ToString"/> and the default views never show <see cref="OwnerConnectionString"/>.
/// </summary>
public sealed class IoTHubEmulator : IAsyncDisposable, IDisposable
{
    /// <summary>The WebSocket path of MQTT over WebSockets, as on the hub.</summary>
    public const string WebSocketPath = "/$iothub/websocket";

    private readonly IoTHubEmulatorOptions options;
    private readonly EmulatorLog log;
    private readonly EmulatorCertificates certificates;
    private readonly IHubStore store;
    private readonly MqttServer deviceServer;
    private readonly MqttServer dpsServer;
    private readonly HttpServer httpServer;
    private readonly MqttListenerAdapter tlsAdapter;
    private readonly MqttListenerAdapter? plainAdapter;
    private readonly MqttListenerAdapter dpsAdapter;
    private readonly AmqpEndpoint? amqp;
    private readonly bool ownsDataPath;
    private readonly DataPathLock dataPathLock;
    private int stopped;

    private IoTHubEmulator(IoTHubEmulatorOptions options, string dataPath, bool ownsDataPath)
    {
        this.options = options;
        this.ownsDataPath = ownsDataPath;
        DataPath = dataPath;
        log = new EmulatorLog(options.Log);
        try
        {
            PrivateFiles.CreateFolder(dataPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw DataPathLock.DataPathNotWritable(dataPath, ex);
        }

        dataPathLock = DataPathLock.Acquire(dataPath);
        try
        {
            certificates = EmulatorCertificates.Create(dataPath, options.HostName, options.CertificatePath, options.CertificatePassword, options.ReplaceCertificateAuthority, log);
        }
        catch
        {
            dataPathLock.Dispose();
            throw;
        }

        try
        {
            store = options.Persist ? new SqliteHubStore(Path.Combine(dataPath, "emulator.db"), options.StoreBusyTimeout) : new MemoryHubStore();
            Hub = new HubState(options, store, log);
            Tier = options.Tier is { } tier ? new TierThrottles(tier, options.Units, options.TimeProvider) : null;
            var authenticator = new SasAuthenticator(options.TokenClockSkew, options.TimeProvider.GetUtcNow);
            Devices = new DeviceEndpoint(Hub, authenticator, log) { ClockSkew = options.TokenClockSkew, OperationsPerSecond = options.DeviceOperationsPerSecond, Tier = Tier };
            Dps = new DpsState(Hub, options.IdScope);

            var tls = new TlsAcceptor(certificates.ServerCertificate, log); // one TLS acceptor for every listener
            tlsAdapter = new MqttListenerAdapter(options.ListenAddress, options.MqttTlsPort, tls, log, Hub.Bodies);
            plainAdapter = options.MqttPort >= 0 ? new MqttListenerAdapter(options.ListenAddress, options.MqttPort, null, log, Hub.Bodies) : null;
            var webSocketAdapter = new WebSocketMqttAdapter(log);
            var adapters = new List<IMqttServerAdapter> { tlsAdapter, webSocketAdapter };
            if (plainAdapter is not null)
            {
                adapters.Add(plainAdapter);
            }

            deviceServer = new MqttServer(ServerOptions(options), adapters, new MqttNetNullLogger());
            Devices.Attach(deviceServer);

            dpsAdapter = new MqttListenerAdapter(options.ListenAddress, options.DpsPort, tls, log);
            dpsServer = new MqttServer(ServerOptions(options), [dpsAdapter], new MqttNetNullLogger());
            new DpsEndpoint(Dps, authenticator, options.DpsRetryAfterSeconds, log) { Tier = Tier }.Attach(dpsServer);

            Jobs = new ImportExportJobs(Hub, options.TimeProvider, log);
            var api = new ServiceApi(Hub, Devices, Dps, authenticator, new RateLimiter(Tier is null ? options.ServiceRequestsPerSecond : 0, options.TimeProvider), log) { Tier = Tier, Jobs = Jobs };
            amqp = options.AmqpPort < 0 ? null
                : new AmqpEndpoint(options.ListenAddress, options.AmqpPort, tls, Hub, authenticator, log);
            api.AmqpPort = amqp?.Port ?? 0;
            if (amqp is not null)
            {
                amqp.Tier = Tier;
            }

            httpServer = new HttpServer(options.ListenAddress, options.HttpsPort, tls, api.HandleAsync, WebSocketPath,
                (socket, remote, cert) => webSocketAdapter.RunAsync(socket, remote, cert), log);
        }
        catch
        {
            amqp?.Dispose();
            Devices?.Dispose();
            store?.Dispose();
            certificates.Dispose();
            dataPathLock.Dispose();
            throw;
        }
    }

    /// <summary>The hub host name clients use in connection strings, SAS resources and user names.</summary>
    public string HostName => options.HostName;

    /// <summary>The address the endpoints listen on.</summary>
    public string ListenAddress => options.ListenAddress.ToString();

    /// <summary>MQTT over TLS (the hub's 8883).</summary>
    public int MqttTlsPort => tlsAdapter.Port;

    /// <summary>Plain MQTT for debugging, or 0 when not enabled.</summary>
    public int MqttPort => plainAdapter?.Port ?? 0;

    /// <summary>MQTT over WebSockets at <see cref="WebSocketPath"/> (shares the HTTPS port, as the hub's 443 does).</summary>
    public int WebSocketPort => httpServer.Port;

    /// <summary>The service REST API over HTTPS.</summary>
    public int HttpsPort => httpServer.Port;

    /// <summary>Service-side AMQP over TLS (C2D send, telemetry read, CBS), or 0 when disabled.</summary>
    public int AmqpPort => amqp?.Port ?? 0;

    /// <summary>DPS over MQTT/TLS.</summary>
    public int DpsPort => dpsAdapter.Port;

    /// <summary>ID scope for DPS registrations.</summary>
    public string IdScope => options.IdScope;

    /// <summary>PEM file of the CA clients must trust (e.g. <c>mosquitto_pub --cafile</c>).</summary>
    public string CaCertificatePath => certificates.CaCertificatePath;

    /// <summary>Folder with the certificates and, when persisting, the database.</summary>
    public string DataPath { get; }

    /// <summary>Whether devices, twins and C2D messages are kept in SQLite across restarts.</summary>
    public bool Persistent => options.Persist;

    public bool IsRunning => Volatile.Read(ref stopped) == 0;

    /// <summary>
    /// A fault for testing device clients: telemetry publishes, and separately twin requests, each device may make per
    /// second before it is throttled (its connection closed, or its twin request answered 429); 0 is unlimited.
    /// Starts as <see cref="IoTHubEmulatorOptions.DeviceOperationsPerSecond"/>; may be changed while the emulator runs.
    /// </summary>
    public int DeviceOperationsPerSecond
    {
        get => Devices.OperationsPerSecond;
        set => Devices.OperationsPerSecond = Math.Max(0, value);
    }

    /// <summary>Devices registered now (modules not counted).</summary>
    public int DeviceCount => Hub.DeviceIds().Count;

    /// <summary>Devices connected over MQTT now.</summary>
    public int ConnectedDeviceCount => Devices.ConnectedCount;

    /// <summary>
    /// Connection string of the <c>iothubowner</c> policy for the service REST API. Secret: shown in no view and
    /// not in <see cref="ToString"/>.
    /// </summary>
    public string OwnerConnectionString =>
        $"HostName={HostName};SharedAccessKeyName=iothubowner;SharedAccessKey={Hub.Policies["iothubowner"].PrimaryKey}";

    /// <summary>The name of the hub's Event Hub-compatible entity (the built-in endpoint's EntityPath).</summary>
    public string EventHubName => Hub.EventHubName;

    /// <summary>
    /// The Event Hub-compatible ("built-in") endpoint's connection string of the <c>iothubowner</c> policy, as the portal
    /// and <c>az iot hub connection-string show --default-eventhub</c> give it: the Event Hubs clients
    /// (Azure.Messaging.EventHubs, @azure/event-hubs) read the hub's telemetry with it; they must trust
    /// <see cref="CaCertificatePath"/>, and the .NET client reaches a port other than 5671 only through its custom
    /// endpoint address. Secret: shown in no view and not in <see cref="ToString"/>. Null when AMQP is off.
    /// </summary>
    public string? EventHubConnectionString => AmqpPort == 0 ? null
        : $"Endpoint=sb://{HostName}{(AmqpPort == 5671 ? "" : ":" + AmqpPort.ToString(System.Globalization.CultureInfo.InvariantCulture))}/;SharedAccessKeyName=iothubowner;SharedAccessKey={Hub.Policies["iothubowner"].PrimaryKey};EntityPath={EventHubName}";

    /// <summary>Receiver links reading partitions of the Event Hub-compatible endpoint now.</summary>
    internal int EventHubReceiverCount => amqp?.ConsumerCount ?? 0;

    internal HubState Hub { get; }

    /// <summary>Sessions the MQTT server holds (connected plus persistent ones), for leak checks.</summary>
    internal async Task<int> MqttSessionCountAsync() => (await deviceServer.GetSessionsAsync().ConfigureAwait(false)).Count;

    /// <summary>The session items MQTTnet keeps for a device's session (null when it has none).</summary>
    internal async Task<System.Collections.IDictionary?> MqttSessionItemsAsync(string clientId) =>
        (await deviceServer.GetSessionsAsync().ConfigureAwait(false)).FirstOrDefault(s => s.Id == clientId)?.Items;

    internal DeviceEndpoint Devices { get; }

    internal DpsState Dps { get; }

    /// <summary>The emulated tier's throttles, or null when unthrottled.</summary>
    internal TierThrottles? Tier { get; }

    internal ImportExportJobs Jobs { get; }

    /// <summary>The emulated IoT Hub tier, or null (unthrottled).</summary>
    public IoTHubTier? HubTier => Tier?.Tier;

    /// <summary>Units of <see cref="HubTier"/>.</summary>
    public int Units => Tier?.Units ?? 0;

    /// <summary>Starts an emulator; with no options: loopback, OS-chosen ports, a new temporary data folder, nothing persisted.</summary>
    public static async Task<IoTHubEmulator> StartAsync(IoTHubEmulatorOptions? options = null, CancellationToken cancellationToken = default)
    {
        var effective = (options ?? new IoTHubEmulatorOptions()).Clone();
        Validate(effective);
        var ownsDataPath = effective.DataPath is null;
        var dataPath = effective.DataPath ?? Path.Combine(Path.GetTempPath(), "iothubmqtt-emulator-" + Guid.NewGuid().ToString("N")[..12]);
        if (effective.Persist && ownsDataPath)
        {
            throw new IoTHubMqttException(ErrorIds.EmulatorPersistNeedsDataPath,
                "Persisting state needs a data path.", "Pass -DataPath with a folder to keep the emulator's state in.", "DataPath");
        }

        IoTHubEmulator emulator;
        try
        {
            emulator = new IoTHubEmulator(effective, Path.GetFullPath(dataPath), ownsDataPath);
        }
        catch (System.Net.Sockets.SocketException socketError)
        {
            throw PortInUse(socketError);
        }

        try
        {
            await emulator.StartEndpointsAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            await emulator.DisposeAsync().ConfigureAwait(false);
            if (ex is System.Net.Sockets.SocketException socketError)
            {
                throw PortInUse(socketError);
            }

            throw;
        }

        return emulator;
    }

    private static IoTHubMqttException PortInUse(System.Net.Sockets.SocketException socketError) =>
        new(ErrorIds.EmulatorPortInUse, $"The emulator could not listen: {socketError.SocketErrorCode}.",
            "Choose other ports, or leave them out so the system picks free ones.", null, socketError);

    private async Task StartEndpointsAsync(CancellationToken cancellationToken)
    {
        await deviceServer.StartAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        await dpsServer.StartAsync().ConfigureAwait(false);
        httpServer.Start();
        amqp?.Start();
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        log.Information($"IoT Hub emulator '{HostName}' listening on {ListenAddress}: MQTT/TLS {MqttTlsPort}, HTTPS+WebSocket {HttpsPort}, DPS {DpsPort}, AMQP {AmqpPort}" +
            (plainAdapter is null ? "." : $", plain MQTT {MqttPort}."));
    }

    /// <summary>Registers a device with symmetric keys (generated when not given) and returns its credentials.</summary>
    public EmulatorDeviceCredentials CreateDevice(string deviceId, string? primaryKey = null, string? secondaryKey = null)
    {
        var auth = new JsonObject { ["type"] = "sas" };
        if (primaryKey is not null || secondaryKey is not null)
        {
            auth["symmetricKey"] = new JsonObject { ["primaryKey"] = primaryKey, ["secondaryKey"] = secondaryKey };
        }

        try
        {
            var json = Hub.PutDevice(deviceId, new JsonObject { ["deviceId"] = deviceId, ["authentication"] = auth }, null);
            return CredentialsOf(json);
        }
        catch (HubError error)
        {
            throw ToException(error, deviceId);
        }
    }

    /// <summary>Registers a device that authenticates with a client certificate of the given SHA-1 (or SHA-256) thumbprint.</summary>
    public void CreateX509Device(string deviceId, string primaryThumbprint, string? secondaryThumbprint = null)
    {
        try
        {
            Hub.PutDevice(deviceId, new JsonObject
            {
                ["deviceId"] = deviceId,
                ["authentication"] = new JsonObject
                {
                    ["type"] = "selfSigned",
                    ["x509Thumbprint"] = new JsonObject { ["primaryThumbprint"] = primaryThumbprint, ["secondaryThumbprint"] = secondaryThumbprint },
                },
            }, null);
        }
        catch (HubError error)
        {
            throw ToException(error, deviceId);
        }
    }

    /// <summary>The credentials of a registered device.</summary>
    public EmulatorDeviceCredentials GetDevice(string deviceId)
    {
        try
        {
            return CredentialsOf(Hub.GetDeviceJson(deviceId));
        }
        catch (HubError error)
        {
            throw ToException(error, deviceId);
        }
    }

    /// <summary>Adds a DPS individual symmetric-key enrollment; returns its primary key.</summary>
    public string AddIndividualEnrollment(string registrationId, string? primaryKey = null, string? deviceId = null) =>
        Dps.AddEnrollment(registrationId, group: false, primaryKey, null, deviceId).PrimaryKey;

    /// <summary>Adds a DPS group symmetric-key enrollment; returns the group's primary key (device keys derive from it).</summary>
    public string AddEnrollmentGroup(string groupId, string? primaryKey = null) =>
        Dps.AddEnrollment(groupId, group: true, primaryKey, null).PrimaryKey;

    /// <summary>A SAS token of the <c>iothubowner</c> policy for the REST API.</summary>
    public string CreateServiceToken(TimeSpan? timeToLive = null) =>
        SasToken.CreateForTimeToLive(HostName, Hub.Policies["iothubowner"].PrimaryKey, timeToLive ?? TimeSpan.FromHours(1), "iothubowner");

    /// <summary>
    /// Drops every open AMQP connection (service clients: C2D, feedback, telemetry readers) at the transport level, as a
    /// network fault would; new connections are accepted as before. Returns how many were open.
    /// </summary>
    public int DropAmqpConnections() => amqp?.DropConnections() ?? 0;

    /// <summary>How many AMQP connections (service clients) are open.</summary>
    public int AmqpConnectionCount => amqp?.ConnectionCount ?? 0;

    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref stopped, 1) != 0)
        {
            return;
        }

        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        await httpServer.StopAsync().ConfigureAwait(false);
        Jobs.Dispose();
        amqp?.Dispose();
        await StopServerAsync(deviceServer).ConfigureAwait(false);
        await StopServerAsync(dpsServer).ConfigureAwait(false);
        Devices.Dispose();
        httpServer.Dispose();
        deviceServer.Dispose();
        dpsServer.Dispose();
        store.Dispose();
        certificates.Dispose();
        dataPathLock.Dispose();
        if (ownsDataPath)
        {
            try
            {
                Directory.Delete(DataPath, recursive: true);
            }
            catch (IOException)
            {
                // a file still open elsewhere; the temp folder is left behind
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        log.Information($"IoT Hub emulator '{HostName}' stopped.");
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    public void Dispose() => StopAsync().GetAwaiter().GetResult();

    public override string ToString() => $"IoT Hub emulator {HostName} (MQTT/TLS {MqttTlsPort}, HTTPS {HttpsPort}, DPS {DpsPort}{(Tier is null ? "" : $", {Tier.Tier} x{Tier.Units}")}{(IsRunning ? "" : ", stopped")})";

    private static async Task StopServerAsync(MqttServer server)
    {
        if (!server.IsStarted)
        {
            return;
        }

        try
        {
            await server.StopAsync(new MqttServerStopOptions()).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void OnProcessExit(object? sender, EventArgs e) => Dispose();

    private EmulatorDeviceCredentials CredentialsOf(JsonObject json)
    {
        var id = json["deviceId"]!.GetValue<string>();
        var primary = json["authentication"]?["symmetricKey"]?["primaryKey"]?.GetValue<string>();
        var secondary = json["authentication"]?["symmetricKey"]?["secondaryKey"]?.GetValue<string>();
        return new EmulatorDeviceCredentials(id, HostName, primary, secondary);
    }

    private static IoTHubMqttException ToException(HubError error, string deviceId) => new(
        error.Code,
        error.Status switch { 404 => IoTHubErrorKind.NotFound, 409 => IoTHubErrorKind.AlreadyExists, 412 => IoTHubErrorKind.InvalidOperation, _ => IoTHubErrorKind.InvalidArgument },
        error.Message, null, deviceId);

    private static MqttServerOptions ServerOptions(IoTHubEmulatorOptions options)
    {
        var serverOptions = new MqttServerOptions
        {
            EnablePersistentSessions = true,
            DefaultCommunicationTimeout = options.ConnectTimeout,
            MaxPendingMessagesPerClient = 1000,
        };
        return serverOptions;
    }

    private static void Validate(IoTHubEmulatorOptions options)
    {
        options.TimeProvider ??= TimeProvider.System;
        static void Port(int port, string name, bool allowDisabled)
        {
            if (port > 65535 || port < (allowDisabled ? -1 : 0))
            {
                throw new IoTHubMqttException(ErrorIds.EmulatorPortInvalid,
                    $"The {name} {port} is not a TCP port.", "Pass 0 to let the system choose, or a port from 1 to 65535.", name);
            }
        }

        Port(options.MqttTlsPort, "MqttTlsPort", false);
        Port(options.MqttPort, "MqttPort", true);
        Port(options.HttpsPort, "HttpsPort", false);
        Port(options.DpsPort, "DpsPort", false);
        Port(options.AmqpPort, "AmqpPort", true);
        if (options.PartitionCount is < 1 or > 32)
        {
            throw new IoTHubMqttException(ErrorIds.EmulatorPartitionCountInvalid,
                $"The PartitionCount {options.PartitionCount} is not between 1 and 32.", "Pass a partition count from 1 to 32 (a real hub has 2 to 32).", "PartitionCount");
        }

        if (options.TelemetryRetention < 1)
        {
            throw new IoTHubMqttException(ErrorIds.EmulatorRetentionInvalid,
                $"The TelemetryRetention {options.TelemetryRetention} keeps no message.", "Pass the number of telemetry messages to keep, 1 or more (100,000 by default).", "TelemetryRetention");
        }

        if (options.TelemetryRetentionPeriod <= TimeSpan.Zero)
        {
            throw new IoTHubMqttException(ErrorIds.EmulatorRetentionInvalid,
                $"The TelemetryRetentionPeriod {options.TelemetryRetentionPeriod} keeps no message.", "Pass a positive time span (one day by default).", "TelemetryRetentionPeriod");
        }

        if (string.IsNullOrWhiteSpace(options.HostName) || options.HostName.Any(c => c is '/' or ';' or ' ' or '?' or '#'))
        {
            throw new IoTHubMqttException(ErrorIds.EmulatorHostNameInvalid,
                "The host name is empty or has characters a host name cannot have.", "Pass a name such as 'localhost' or 'myhub.local'.", "HostName");
        }

        if (options.OwnerKey is not null)
        {
            SharedAccessKeys.Decode(options.OwnerKey, "OwnerKey");
        }

        if (options.Tier is { } tier && (options.Units < 1 || options.Units > TierQuotas.MaxUnits(tier)))
        {
            throw new IoTHubMqttException(ErrorIds.EmulatorUnitsInvalid,
                $"A {tier} hub has 1 to {TierQuotas.MaxUnits(tier)} units, not {options.Units}.", $"Pass -Units from 1 to {TierQuotas.MaxUnits(tier)}.", "Units");
        }
    }
}

/// <summary>A device's identity and keys in the emulator. <see cref="ToString"/> shows no key.</summary>
public sealed record EmulatorDeviceCredentials(string DeviceId, string HostName, string? PrimaryKey, string? SecondaryKey)
{
    /// <summary>The device connection string (secret).</summary>
    public string? ConnectionString => PrimaryKey is null ? null : $"HostName={HostName};DeviceId={DeviceId};SharedAccessKey={PrimaryKey}";

    public override string ToString() => $"Device {DeviceId} on {HostName}";
}
