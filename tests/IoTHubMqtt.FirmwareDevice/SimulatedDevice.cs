using IoTHubDevice.Logic.Configuration;
using IoTHubDevice.Logic.Device;
using IoTHubDevice.Logic.Platform;
using IoTHubMqtt.Core.NanoFramework;
using DeviceConfiguration = IoTHubDevice.Logic.Configuration.DeviceConfiguration;

namespace IoTHubMqtt.FirmwareDevice;

/// <summary>
/// A device running the firmware's logic on .NET, as the board runs it: the configuration comes from the same bytes the board
/// reads, the app ticks on its own thread every 20 ms, and MQTT goes over TLS through <see cref="MqttNetTransport"/>.
/// Dispose stops it (bounded wait) and disconnects.
/// </summary>
public sealed class SimulatedDevice : IDisposable
{
    private readonly CancellationTokenSource stop = new();
    private readonly Thread loop;
    private readonly MqttNetTransport transport;
    private bool disposed;

    private SimulatedDevice(DeviceConfiguration configuration, string firmwareVersion)
    {
        Configuration = configuration;
        transport = new MqttNetTransport(TimeSpan.FromSeconds(10));
        App = new DeviceApp(configuration, transport, new NetHmacSha256(), Clock, Board, Log, firmwareVersion, new Random());
        App.CloudMessage = (body, properties) => CloudMessages.Enqueue(body);
        loop = new Thread(Run) { IsBackground = true, Name = "SimulatedDevice " + configuration };
        loop.Start();
    }

    public DeviceConfiguration Configuration { get; }

    public DeviceApp App { get; }

    public SimulatedBoard Board { get; } = new();

    public QueueLog Log { get; } = new();

    /// <summary>The device's wall clock; tests move it forward to reach a token renewal.</summary>
    public AdjustableClock Clock { get; } = new();

    /// <summary>Bodies of the cloud-to-device messages the app took.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<byte[]> CloudMessages { get; } = new();

    /// <summary>An exception that ended the loop (a bug in the logic), or null.</summary>
    public Exception? Fault { get; private set; }

    /// <summary>Starts a device from the configuration file's bytes (what the board reads from I:\iothub-device.cfg).</summary>
    public static SimulatedDevice Start(byte[] configurationFile, string firmwareVersion = "0.1.0") =>
        new(DeviceConfiguration.Decode(configurationFile), firmwareVersion);

    /// <summary>Starts a device from a dump of its littlefs <c>config</c> partition.</summary>
    public static SimulatedDevice StartFromConfigPartition(byte[] partition, string firmwareVersion = "0.1.0")
    {
        var files = LittleFsImage.ReadRootFiles(partition);
        if (!files.TryGetValue(DeviceConfigurationFormat.FileName, out var file))
        {
            throw new InvalidOperationException($"The partition has no {DeviceConfigurationFormat.FileName}.");
        }

        return Start(file, firmwareVersion);
    }

    /// <summary>Waits until the app is connected (or the timeout passes); true when connected.</summary>
    public bool WaitConnected(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (App.State == DeviceState.Connected)
            {
                return true;
            }

            Thread.Sleep(20);
        }

        return App.State == DeviceState.Connected;
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        stop.Cancel();
        loop.Join(TimeSpan.FromSeconds(15));
        transport.Dispose();
        stop.Dispose();
    }

    private void Run()
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                App.Tick();
                stop.Token.WaitHandle.WaitOne(20);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Fault = ex;
        }
    }
}
