using System.Globalization;
using System.Net;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Emulator;

// Standalone: dotnet run --project src/IoTHubMqtt.Emulator -- [options]. Runs until Ctrl+C.
var options = new IoTHubEmulatorOptions { MqttTlsPort = 8883, HttpsPort = 8443, DpsPort = 8884, AmqpPort = 5671, Log = (level, line) => Console.Error.WriteLine($"[{level}] {line}") };
var verbose = false;
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
    int NextPort() => int.Parse(Next(), NumberStyles.Integer, CultureInfo.InvariantCulture);
    switch (args[i])
    {
        case "--host-name": options.HostName = Next(); break;
        case "--address": options.ListenAddress = IPAddress.Parse(Next()); break;
        case "--mqtt-tls-port": options.MqttTlsPort = NextPort(); break;
        case "--mqtt-port": options.MqttPort = NextPort(); break;
        case "--https-port": options.HttpsPort = NextPort(); break;
        case "--dps-port": options.DpsPort = NextPort(); break;
        case "--amqp-port": options.AmqpPort = NextPort(); break;
        case "--partitions": options.PartitionCount = NextPort(); break;
        case "--ephemeral-ports": options.MqttTlsPort = options.HttpsPort = options.DpsPort = options.AmqpPort = 0; break;
        case "--data-path": options.DataPath = Next(); break;
        case "--persist": options.Persist = true; break;
        case "--certificate": options.CertificatePath = Next(); break;
        case "--certificate-password": options.CertificatePassword = Next(); break;
        case "--owner-key": options.OwnerKey = Next(); break;
        case "--id-scope": options.IdScope = Next(); break;
        case "--requests-per-second": options.ServiceRequestsPerSecond = NextPort(); break;
        case "--device-ops-per-second": options.DeviceOperationsPerSecond = NextPort(); break;
        case "--tier": options.Tier = Enum.Parse<IoTHubTier>(Next(), ignoreCase: true); break;
        case "--units": options.Units = NextPort(); break;
        case "--verbose": verbose = true; break;
        case "-h" or "--help":
            Console.WriteLine("""
                IoTHubMqtt emulator: a local IoT Hub (MQTT/TLS, MQTT over WebSockets, service REST and AMQP, DPS).
                  --host-name NAME          hub host name (default localhost)
                  --address IP              listen address (default 127.0.0.1)
                  --mqtt-tls-port N         MQTT over TLS (default 8883)
                  --mqtt-port N             also plain MQTT on N (off by default)
                  --https-port N            REST API and /$iothub/websocket (default 8443)
                  --dps-port N              DPS over MQTT/TLS (default 8884)
                  --amqp-port N             service AMQP over TLS (default 5671, -1 = off)
                  --partitions N            partitions of the Event Hub-compatible endpoint (default 4)
                  --ephemeral-ports         let the system choose every port
                  --data-path DIR           certificates, owner connection string and database folder
                  --persist                 keep devices, twins and C2D in DIR/emulator.db
                  --certificate PFX         server certificate instead of a generated CA
                  --certificate-password P  password of the PFX
                  --owner-key BASE64        key of the iothubowner policy
                  --id-scope SCOPE          DPS ID scope
                  --requests-per-second N   service REST rate before 429 (0 = unlimited)
                  --device-ops-per-second N throttle each device over N telemetry/twin operations a second (0 = off)
                  --tier F1|B1|B2|B3|S1|S2|S3  apply that IoT Hub tier's operation throttles and DPS limits
                  --units N                 units of the tier (default 1)
                  --verbose                 log every connection
                """);
            return 0;
        default:
            Console.Error.WriteLine($"Unknown option '{args[i]}'. Use --help.");
            return 2;
    }
}

if (!verbose)
{
    var sink = options.Log;
    options.Log = (level, line) =>
    {
        if (level != EmulatorLogLevel.Verbose)
        {
            sink!(level, line);
        }
    };
}

options.DataPath ??= Path.Combine(Environment.CurrentDirectory, ".iothub-emulator");
try
{
    await using var emulator = await IoTHubEmulator.StartAsync(options).ConfigureAwait(false);

    // The owner connection string is a secret: written to a file only its owner can read, never to the console.
    var secretPath = Path.Combine(emulator.DataPath, "owner-connection-string.txt");
    File.WriteAllText(secretPath, emulator.OwnerConnectionString);
    if (!OperatingSystem.IsWindows())
    {
        File.SetUnixFileMode(secretPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    Console.WriteLine($"HostName:           {emulator.HostName}");
    Console.WriteLine($"MQTT/TLS port:      {emulator.MqttTlsPort}");
    if (emulator.MqttPort != 0)
    {
        Console.WriteLine($"MQTT port:          {emulator.MqttPort}");
    }

    Console.WriteLine($"HTTPS/WS port:      {emulator.HttpsPort}");
    Console.WriteLine($"DPS port:           {emulator.DpsPort} (ID scope {emulator.IdScope})");
    if (emulator.AmqpPort != 0)
    {
        Console.WriteLine($"AMQP/TLS port:      {emulator.AmqpPort}");
    }

    Console.WriteLine($"CA certificate:     {emulator.CaCertificatePath}");
    Console.WriteLine($"Owner conn. string: in {secretPath}");
    Console.WriteLine("Press Ctrl+C to stop.");
    using var stop = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        stop.Cancel();
    };
    try
    {
        await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
    }
    catch (OperationCanceledException)
    {
    }

    return 0;
}
catch (IoTHubMqttException ex)
{
    Console.Error.WriteLine($"{ex.ErrorId}: {ex.Message} {ex.RecommendedAction}");
    return 1;
}
