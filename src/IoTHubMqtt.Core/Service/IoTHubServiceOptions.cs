using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service;

/// <summary>How an <see cref="IoTHubServiceClient"/> reaches the hub's service REST API.</summary>
public sealed class IoTHubServiceOptions
{
    /// <summary>A shared-access-policy connection string (<c>HostName=…;SharedAccessKeyName=…;SharedAccessKey=…</c>). Secret.</summary>
    public required string ConnectionString { get; init; }

    /// <summary>The HTTPS port; 443 when null.</summary>
    public int? Port { get; init; }

    /// <summary>
    /// The AMQP port (C2D send, feedback and telemetry read). Null: 5671 for a hub in Azure; for any other host the
    /// emulator's <c>GET /$emulator/endpoints</c> is asked first, and 5671 used when it does not exist.
    /// </summary>
    public int? AmqpPort { get; init; }

    /// <summary>A PEM file of extra CA certificates to trust (the emulator's CA).</summary>
    public string? CaCertificatePath { get; init; }

    public bool UseSystemTrustStore { get; init; } = true;

    /// <summary>Lifetime of the policy SAS tokens the client signs; a new one is made when 15 % of it is left.</summary>
    public TimeSpan TokenTimeToLive { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Retries of a failed (5xx) or interrupted request before giving up.</summary>
    public int MaxRetries { get; init; } = 6;

    /// <summary>
    /// How long one request may go on being throttled (429) before it fails with IoTHubThrottled. Until then it is tried again
    /// after each Retry-After the hub gives (or with backoff up to 30 s when it gives none), and other requests of the same
    /// kind wait with it. Default 15 minutes: a one-unit S1 hub takes a minute for each 100 registry operations.
    /// </summary>
    public TimeSpan MaxThrottledWait { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>The clock for token lifetimes, retry delays and throttling waits; tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    public TimeSpan RetryInitialDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Timeout of one HTTP request (a method call adds its own response timeout to this).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Parallel HTTP connections to the hub.</summary>
    public int MaxConnections { get; init; } = 64;

    /// <summary>True when the hub is known to be this module's emulator (its <c>/$emulator/</c> extensions exist).</summary>
    public bool IsEmulator { get; init; }

    public Action<string>? Log { get; init; }

    internal IoTHubConnectionString ParsePolicy()
    {
        var parsed = IoTHubConnectionString.Parse(ConnectionString);
        if (parsed.Kind != ConnectionStringKind.Policy)
        {
            throw new IoTHubMqttException(ErrorIds.ServiceConnectionStringRequired,
                $"The connection string is a {parsed.Kind.ToString().ToLowerInvariant()} connection string; the service API needs a shared access policy string.",
                "Use the iothubowner (or another policy's) connection string: HostName=…;SharedAccessKeyName=…;SharedAccessKey=….", parsed.HostName);
        }

        return parsed;
    }
}
