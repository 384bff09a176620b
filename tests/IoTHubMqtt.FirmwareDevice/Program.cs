using System.Text.Json;
using IoTHubDevice.Logic;
using IoTHubMqtt.Core.NanoFramework;
using DeviceConfiguration = IoTHubDevice.Logic.Configuration.DeviceConfiguration;

namespace IoTHubMqtt.FirmwareDevice;

/// <summary>
/// A board flashed with the firmware, as a process, for tests that cannot load the module's core themselves (the module tests):
/// given a dump of the board's whole flash it boots as the board does (partition table at 0x8000, littlefs <c>config</c>
/// partition, <c>iothub-device.cfg</c>) and either prints the configuration the firmware decoded, or runs the app.
/// <code>
/// firmware-device read-config &lt;flash.bin&gt;          JSON of the decoded fields on stdout; exit 1 and "ErrorId: message" on stderr
/// firmware-device run &lt;flash.bin&gt; [seconds]        "connected &lt;deviceId&gt;" once connected; stops at stdin EOF or after seconds
/// </code>
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length < 2 || args[0] is not ("read-config" or "run"))
        {
            Console.Error.WriteLine("usage: firmware-device read-config|run <flash.bin> [seconds]");
            return 2;
        }

        byte[] file;
        try
        {
            file = ConfigFileFromFlash(File.ReadAllBytes(args[1]));
        }
        catch (Exception ex) when (ex is IoTHubMqtt.Core.Errors.IoTHubMqttException or IOException)
        {
            Console.Error.WriteLine((ex is IoTHubMqtt.Core.Errors.IoTHubMqttException e ? e.ErrorId : "IOError") + ": " + ex.Message);
            return 1;
        }

        if (args[0] == "read-config")
        {
            try
            {
                Console.Out.WriteLine(Describe(DeviceConfiguration.Decode(file)));
                return 0;
            }
            catch (DeviceLogicException ex)
            {
                Console.Error.WriteLine(ex.ErrorId + ": " + ex.Message);
                return 1;
            }
        }

        using var device = SimulatedDevice.Start(file);
        var seconds = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 300;
        var stdinClosed = Task.Run(() => Console.In.ReadToEnd());
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        var announced = false;
        while (DateTime.UtcNow < deadline && !stdinClosed.IsCompleted && device.Fault is null)
        {
            if (!announced && device.WaitConnected(TimeSpan.FromMilliseconds(100)))
            {
                Console.Out.WriteLine("connected " + device.App.DeviceId);
                Console.Out.Flush();
                announced = true;
            }

            Thread.Sleep(50);
        }

        return device.Fault is null ? 0 : 3;
    }

    /// <summary>What the board reads at boot: the config partition from the partition table, the file from its littlefs.</summary>
    public static byte[] ConfigFileFromFlash(byte[] flash)
    {
        var table = PartitionTable.Parse(flash.AsSpan((int)PartitionTable.DefaultOffset, PartitionTable.MaxLength));
        var partition = table.Find(DeviceConfigurationFormat.PartitionName)
            ?? throw new IoTHubMqtt.Core.Errors.IoTHubMqttException("PartitionNotFound", IoTHubMqtt.Core.Errors.IoTHubErrorKind.NotFound, "No config partition.", null, null);
        var files = LittleFsImage.ReadRootFiles(flash.AsSpan((int)partition.Offset, (int)partition.Size));
        return files.TryGetValue(DeviceConfigurationFormat.FileName, out var file)
            ? file
            : throw new IoTHubMqtt.Core.Errors.IoTHubMqttException("DeviceConfigurationNotFound", IoTHubMqtt.Core.Errors.IoTHubErrorKind.NotFound, "No configuration file.", null, null);
    }

    /// <summary>The decoded configuration as JSON (secrets included: this is a test tool reading a test board).</summary>
    public static string Describe(DeviceConfiguration c) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["wifiSsid"] = c.WifiSsid,
        ["wifiPassword"] = c.WifiPassword,
        ["hostName"] = c.UsesDps ? null : c.ConnectionString.HostName,
        ["deviceId"] = c.UsesDps ? null : c.ConnectionString.DeviceId,
        ["sharedAccessKey"] = c.UsesDps ? null : c.ConnectionString.SharedAccessKey,
        ["idScope"] = c.DpsIdScope,
        ["registrationId"] = c.DpsRegistrationId,
        ["symmetricKey"] = c.DpsSymmetricKey,
        ["globalEndpoint"] = c.DpsGlobalEndpoint,
        ["caCertificate"] = c.CaCertificatePem,
        ["telemetryInterval"] = c.TelemetryIntervalSeconds,
        ["port"] = c.Port,
    });
}
