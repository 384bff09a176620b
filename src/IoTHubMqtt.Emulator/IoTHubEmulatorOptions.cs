using System.Net;

namespace IoTHubMqtt.Emulator;

/// <summary>How an <see cref="IoTHubEmulator"/> listens and behaves. Port 0 lets the OS choose (tests run in parallel); -1 disables an endpoint.</summary>
public sealed class IoTHubEmulatorOptions
{
    /// <summary>The hub host name clients put in SAS resources, user names and connection strings. The server certificate names it.</summary>
    public string HostName { get; set; } = "localhost";

    /// <summary>The address every endpoint binds to (loopback by default).</summary>
    public IPAddress ListenAddress { get; set; } = IPAddress.Loopback;

    /// <summary>MQTT over TLS (the hub's 8883).</summary>
    public int MqttTlsPort { get; set; }

    /// <summary>Plain MQTT for debugging; disabled (-1) unless asked for.</summary>
    public int MqttPort { get; set; } = -1;

    /// <summary>HTTPS: the service REST API and MQTT over WebSockets at <c>/$iothub/websocket</c> (the hub's 443).</summary>
    public int HttpsPort { get; set; }

    /// <summary>DPS over MQTT/TLS.</summary>
    public int DpsPort { get; set; }

    /// <summary>Service-side AMQP over TLS (the hub's 5671): CBS, C2D send and telemetry read. -1 disables it.</summary>
    public int AmqpPort { get; set; }

    /// <summary>Partitions of the Event Hub-compatible endpoint (1 to 32); a device's telemetry always goes to the same one.</summary>
    public int PartitionCount { get; set; } = 4;

    /// <summary>Where the CA, server certificate and (with <see cref="Persist"/>) the SQLite database live. Null: a new temporary directory.</summary>
    public string? DataPath { get; set; }

    /// <summary>Keep devices, twins and undelivered C2D messages in <c>{DataPath}/emulator.db</c> across restarts.</summary>
    public bool Persist { get; set; }

    /// <summary>A PFX with the server certificate to use instead of a generated one.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>
    /// Make a new CA in the data path even though one is there (clients must then trust the new <c>ca.pem</c>). Without it
    /// the emulator never replaces its CA: a damaged, missing or expired CA file stops it with an error saying what to do.
    /// </summary>
    public bool ReplaceCertificateAuthority { get; set; }

    /// <summary>Password of <see cref="CertificatePath"/>.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>Primary key of the <c>iothubowner</c> policy; generated when null (and kept in the data path when persisting).</summary>
    public string? OwnerKey { get; set; }

    /// <summary>ID scope of the DPS endpoint.</summary>
    public string IdScope { get; set; } = "0ne00EMU1A7";

    /// <summary>Clock skew tolerated on SAS expiry (the hub allows five minutes).</summary>
    public TimeSpan TokenClockSkew { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a delivered C2D message stays locked waiting for its PUBACK before it is delivered again.</summary>
    public TimeSpan CloudToDeviceLockDuration { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Default time to live of a C2D message.</summary>
    public TimeSpan CloudToDeviceDefaultTimeToLive { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Deliveries of one C2D message before it is dead-lettered.</summary>
    public int CloudToDeviceMaxDeliveryCount { get; set; } = 10;

    /// <summary>Service REST requests per second before answering 429; 0 means unlimited.</summary>
    public int ServiceRequestsPerSecond { get; set; } = 100;

    /// <summary>
    /// A fault for testing device clients: how many telemetry publishes, and separately how many twin requests, one device
    /// may make per second before the hub throttles it. Over the rate a telemetry publish is not acknowledged and the
    /// connection is closed (what IoT Hub does to a throttled MQTT 3.1.1 device) and a twin request is answered 429.
    /// 0 (the default) means unlimited.
    /// </summary>
    public int DeviceOperationsPerSecond { get; set; }

    /// <summary>How long DPS tells devices to wait before polling (the <c>retry-after</c> it answers).</summary>
    public int DpsRetryAfterSeconds { get; set; } = 1;

    /// <summary>
    /// Telemetry kept for the service to read: the newest this many messages (oldest dropped first), in memory and, when
    /// persisting, on disk alike. The database may hold up to 1,000 older ones more until its next pruning step.
    /// </summary>
    public int TelemetryRetention { get; set; } = 100_000;

    /// <summary>
    /// Telemetry older than this (by enqueued time on the hub's clock) is dropped too, in memory and on disk alike; one day
    /// by default, as on an IoT hub's built-in endpoint.
    /// </summary>
    public TimeSpan TelemetryRetentionPeriod { get; set; } = TimeSpan.FromDays(1);

    /// <summary>How long a new MQTT connection may take to send CONNECT (and the server to wait on a silent client).</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The hub's clock: SAS token expiry, C2D lock and time to live, throttling windows, direct-method timeouts, telemetry
    /// retention and every time stamp the hub writes. Tests pass a fake clock (Microsoft.Extensions.TimeProvider.Testing);
    /// the TLS certificates and the sockets' own guards (handshake and idle timeouts) stay on the system clock, since
    /// peers check certificates against theirs.
    /// </summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Receives the emulator's log lines; never given secrets.</summary>
    public Action<EmulatorLogLevel, string>? Log { get; set; }

    /// <summary>How long a database write waits for another program holding the file locked before it fails (a 500, nothing acknowledged).</summary>
    internal TimeSpan StoreBusyTimeout { get; set; } = TimeSpan.FromSeconds(5);

    internal IoTHubEmulatorOptions Clone() => (IoTHubEmulatorOptions)MemberwiseClone();
}

/// <summary>Severity of an emulator log line.</summary>
public enum EmulatorLogLevel
{
    Verbose,
    Information,
    Warning,
    Error,
}
