using System.Globalization;
using System.Net;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Emulator;
using IoTHubMqtt.Emulator.Storage;

// Standalone: dotnet run --project src/IoTHubMqtt.Emulator -- [options]. Runs until Ctrl+C.
// Secrets never come from the command line (every user on the machine can read it, e.g. with ps): the owner key and the
// certificate password come from a file or an environment variable.
const string OwnerKeyVariable = "IOTHUB_EMULATOR_OWNER_KEY";
const string CertificatePasswordVariable = "IOTHUB_EMULATOR_CERTIFICATE_PASSWORD";
var options = new IoTHubEmulatorOptions { MqttTlsPort = 8883, HttpsPort = 8443, DpsPort = 8884, AmqpPort = 5671, Log = (level, line) => Console.Error.WriteLine($"[{level}] {line}") };
var verbose = false;
string? ownerKeyFile = null, passwordFile = null;
try
{
    for (var i = 0; i < args.Length; i++)
    {
        var name = args[i];
        string Next() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{name} needs a value.");
        int NextNumber() => int.TryParse(Next(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : throw new FormatException($"{name} needs a whole number.");
        switch (name)
        {
            case "--host-name": options.HostName = Next(); break;
            case "--address": options.ListenAddress = IPAddress.TryParse(Next(), out var address) ? address : throw new FormatException($"{name} needs an IP address."); break;
            case "--mqtt-tls-port": options.MqttTlsPort = NextNumber(); break;
            case "--mqtt-port": options.MqttPort = NextNumber(); break;
            case "--https-port": options.HttpsPort = NextNumber(); break;
            case "--dps-port": options.DpsPort = NextNumber(); break;
            case "--amqp-port": options.AmqpPort = NextNumber(); break;
            case "--partitions": options.PartitionCount = NextNumber(); break;
            case "--ephemeral-ports": options.MqttTlsPort = options.HttpsPort = options.DpsPort = options.AmqpPort = 0; break;
            case "--data-path": options.DataPath = Next(); break;
            case "--persist": options.Persist = true; break;
            case "--certificate": options.CertificatePath = Next(); break;
            case "--certificate-password-file": passwordFile = Next(); break;
            case "--owner-key-file": ownerKeyFile = Next(); break;
            case "--owner-key" or "--certificate-password":
                var (file, variable) = name == "--owner-key" ? ("--owner-key-file FILE", OwnerKeyVariable) : ("--certificate-password-file FILE", CertificatePasswordVariable);
                Console.Error.WriteLine($"{name} is not accepted: a secret on the command line is visible to every user of this machine (ps). " +
                    $"Put it in a file only you can read and pass {file}, or set the environment variable {variable}.");
                return 2;
            case "--new-ca": options.ReplaceCertificateAuthority = true; break;
            case "--id-scope": options.IdScope = Next(); break;
            case "--requests-per-second": options.ServiceRequestsPerSecond = NextNumber(); break;
            case "--device-ops-per-second": options.DeviceOperationsPerSecond = NextNumber(); break;
            case "--telemetry-retention": options.TelemetryRetention = NextNumber(); break;
            case "--telemetry-retention-hours":
                options.TelemetryRetentionPeriod = double.TryParse(Next(), NumberStyles.Float, CultureInfo.InvariantCulture, out var hours) && hours > 0 && hours < 1e6
                    ? TimeSpan.FromHours(hours)
                    : throw new FormatException($"{name} needs a positive number of hours.");
                break;
            case "--verbose": verbose = true; break;
            case "-h" or "--help":
                Console.WriteLine($"""
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
                                                (default ./.iothub-emulator; locked while the emulator runs)
                      --persist                 keep devices, twins, C2D, feedback and telemetry in DIR/emulator.db
                      --certificate PFX         server certificate instead of a generated CA
                      --new-ca                  replace the CA kept in DIR (clients must trust the new ca.pem)
                      --certificate-password-file FILE  password of the PFX (or ${CertificatePasswordVariable})
                      --owner-key-file FILE     base64 key of the iothubowner policy (or ${OwnerKeyVariable});
                                                generated, and kept in the database with --persist, when neither is given
                      --id-scope SCOPE          DPS ID scope
                      --requests-per-second N   service REST rate before 429 (0 = unlimited)
                      --device-ops-per-second N throttle each device over N telemetry/twin operations a second (0 = off)
                      --telemetry-retention N   telemetry messages kept, in memory and on disk alike (default 100000)
                      --telemetry-retention-hours H  telemetry older than H hours is dropped (default 24)
                      --verbose                 log every connection
                    """);
                return 0;
            default:
                Console.Error.WriteLine($"Unknown option '{name}'. Use --help.");
                return 2;
        }
    }

    options.OwnerKey = Secret(ownerKeyFile, OwnerKeyVariable, "owner key");
    options.CertificatePassword = Secret(passwordFile, CertificatePasswordVariable, "certificate password");
}
catch (FormatException ex)
{
    Console.Error.WriteLine($"{ex.Message} Use --help.");
    return 2;
}
catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"{ex.Message}");
    return 2;
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
    PrivateFiles.WriteAllText(secretPath, emulator.OwnerConnectionString);

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

// A secret from a file (first line, trimmed) or else from an environment variable; null when neither is given.
static string? Secret(string? file, string variable, string what)
{
    if (file is not null)
    {
        var text = File.ReadAllText(file).Trim();
        if (text.Length == 0)
        {
            throw new FormatException($"The {what} file '{file}' is empty.");
        }

        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(file) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)) != 0)
        {
            Console.Error.WriteLine($"[Warning] The {what} file '{file}' is readable by other users; chmod 600 it.");
        }

        return text.Split('\n')[0].Trim();
    }

    var value = Environment.GetEnvironmentVariable(variable);
    return string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
