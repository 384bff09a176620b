using System.Globalization;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>The standalone emulator (IoTHubMqtt.Emulator.dll) in a child process on ephemeral ports, so it can be killed hard.</summary>
internal sealed class ChildEmulator : IDisposable
{
    /// <summary>The environment variable the standalone emulator reads the owner key from.</summary>
    public const string OwnerKeyVariable = "IOTHUB_EMULATOR_OWNER_KEY";

    private readonly RunningProcess process;
    private readonly string ownerKey;

    private ChildEmulator(RunningProcess process, string ownerKey, int tls, int https, string ca)
    {
        this.process = process;
        this.ownerKey = ownerKey;
        TlsPort = tls;
        HttpsPort = https;
        CaPath = ca;
    }

    public int TlsPort { get; }

    public int HttpsPort { get; }

    public string CaPath { get; }

    public int Pid => process.Id;

    /// <summary>Starts the emulator process (not waiting for it to listen).</summary>
    public static RunningProcess Launch(IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "IoTHubMqtt.Emulator.dll");
        var dotnet = Environment.ProcessPath!.EndsWith("dotnet", StringComparison.Ordinal) ? Environment.ProcessPath : "dotnet";
        return ExternalProcess.Start(dotnet, environment, [dll, .. arguments]);
    }

    /// <summary>Starts a persisting emulator on <paramref name="dataPath"/> with <paramref name="ownerKey"/> (passed in its environment) and waits until it listens.</summary>
    public static Task<ChildEmulator> StartAsync(string dataPath, string ownerKey, params string[] extraArguments) =>
        StartAsync(dataPath, new OwnerKeySource(null, ownerKey), ownerKey, extraArguments);

    /// <summary>Starts a persisting emulator whose owner key comes from a file or the environment, and waits until it listens.</summary>
    public static async Task<ChildEmulator> StartAsync(string dataPath, OwnerKeySource source, string ownerKey, params string[] extraArguments)
    {
        var environment = new Dictionary<string, string>();
        string[] keyArguments = [];
        if (source.File is not null)
        {
            keyArguments = ["--owner-key-file", source.File];
        }
        else if (source.Environment is not null)
        {
            environment[OwnerKeyVariable] = source.Environment;
        }

        var process = Launch(environment, ["--ephemeral-ports", "--persist", "--data-path", dataPath, .. keyArguments, .. extraArguments]);
        try
        {
            int tls = 0, https = 0;
            string? ca = null;
            while (tls == 0 || https == 0 || ca is null)
            {
                var line = await process.ReadLineAsync(TimeSpan.FromSeconds(60));
                var value = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
                if (line.StartsWith("MQTT/TLS port:", StringComparison.Ordinal))
                {
                    tls = int.Parse(value, CultureInfo.InvariantCulture);
                }
                else if (line.StartsWith("HTTPS/WS port:", StringComparison.Ordinal))
                {
                    https = int.Parse(value, CultureInfo.InvariantCulture);
                }
                else if (line.StartsWith("CA certificate:", StringComparison.Ordinal))
                {
                    ca = value;
                }
            }

            return new ChildEmulator(process, ownerKey, tls, https, ca);
        }
        catch
        {
            process.Dispose();
            throw;
        }
    }

    public ServiceRestClient Service() =>
        new(HttpsPort, new EmulatorTrust(CaPath), SasToken.CreateForTimeToLive("localhost", ownerKey, TimeSpan.FromHours(1), "iothubowner"));

    public MQTTnet.MqttClientOptionsBuilder Options(string id, string key)
    {
        var trust = new EmulatorTrust(CaPath);
        return new MQTTnet.MqttClientOptionsBuilder()
            .WithTcpServer("localhost", TlsPort)
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V311)
            .WithClientId(id)
            .WithCredentials($"localhost/{id}/?api-version=2021-04-12", SasToken.CreateForTimeToLive(SasResource.ForDevice("localhost", id), key, TimeSpan.FromHours(1)))
            .WithTimeout(TimeSpan.FromSeconds(10))
            .WithTlsOptions(o => o.UseTls().WithCertificateValidationHandler(e => trust.Validate(e.Certificate, e.SslPolicyErrors)));
    }

    /// <summary>SIGKILL (no clean shutdown, nothing flushed by the emulator), then waits for the process to be gone.</summary>
    public void Kill() => process.Dispose();

    public void Dispose() => process.Dispose();

    /// <summary>Where the child gets its owner key: a file named on its command line, or its environment.</summary>
    public sealed record OwnerKeySource(string? File, string? Environment);
}
