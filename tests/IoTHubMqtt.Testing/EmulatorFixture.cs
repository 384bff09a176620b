using IoTHubMqtt.Emulator;

namespace IoTHubMqtt.Testing;

/// <summary>
/// An in-process emulator on OS-chosen loopback ports with a REST client authenticated as iothubowner.
/// Usable as an xunit class fixture (disposable) or directly; every test project can start one.
/// </summary>
public sealed class EmulatorFixture : IAsyncDisposable, IDisposable
{
    private int counter;

    public EmulatorFixture()
        : this(null)
    {
    }

    private EmulatorFixture(Action<IoTHubEmulatorOptions>? configure)
    {
        var options = new IoTHubEmulatorOptions { ServiceRequestsPerSecond = 0, Log = (level, line) => Log.Enqueue($"[{level}] {line}") };
        configure?.Invoke(options);
        Emulator = IoTHubEmulator.StartAsync(options).GetAwaiter().GetResult();
        Trust = new EmulatorTrust(Emulator.CaCertificatePath);
        Service = new ServiceRestClient(Emulator.HttpsPort, Trust, Emulator.CreateServiceToken(TimeSpan.FromHours(4)));
    }

    public IoTHubEmulator Emulator { get; }

    /// <summary>An emulator with options changed by <paramref name="configure"/> (short token skew, a rate limit, persistence…).</summary>
    public static EmulatorFixture Start(Action<IoTHubEmulatorOptions> configure) => new(configure);

    public EmulatorTrust Trust { get; }

    public ServiceRestClient Service { get; }

    /// <summary>Lines the emulator logged (for diagnosing a failed test).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Log { get; } = new();

    /// <summary>A device id unique within this fixture.</summary>
    public string NewDeviceId(string prefix = "dev") => $"{prefix}-{Interlocked.Increment(ref counter)}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>Registers a new device and returns its id and primary key.</summary>
    public (string DeviceId, string Key) CreateDevice(string prefix = "dev")
    {
        var id = NewDeviceId(prefix);
        var credentials = Emulator.CreateDevice(id);
        return (id, credentials.PrimaryKey!);
    }

    /// <summary>Registers and connects a raw MQTT device.</summary>
    public async Task<MqttTestDevice> ConnectNewDeviceAsync(string prefix = "dev", bool cleanSession = true)
    {
        var (id, key) = CreateDevice(prefix);
        return await MqttTestDevice.ConnectAsync(Emulator, id, key, cleanSession).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        Service.Dispose();
        await Emulator.DisposeAsync().ConfigureAwait(false);
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
