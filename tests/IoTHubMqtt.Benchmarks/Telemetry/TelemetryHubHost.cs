using System.Globalization;
using System.Text;
using IoTHubMqtt.Emulator;

namespace IoTHubMqtt.Benchmarks.Telemetry;

/// <summary>
/// The hub of the telemetry benchmark, in a process of its own so that each sender's CPU time is its own: the
/// emulator (in-process here, as Start-IoTHubEmulator runs it) with the devices of every sender created, their
/// connection strings written to one file a sender. It runs until its standard input closes.
/// </summary>
internal static class TelemetryHubHost
{
    public const string Command = "telemetry-hub";

    /// <summary>Arguments: the work folder, the sender names (comma-separated) and the devices a sender.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var work = args[0];
        var senders = args[1].Split(',');
        var devices = int.Parse(args[2], CultureInfo.InvariantCulture);
        await using var emulator = await IoTHubEmulator.StartAsync(new IoTHubEmulatorOptions
        {
            ServiceRequestsPerSecond = 0,

            // Only the count matters here; a short log keeps the hub's memory flat over hundreds of megabytes.
            TelemetryRetention = 1000,
        }).ConfigureAwait(false);
        foreach (var sender in senders)
        {
            var lines = new StringBuilder();
            for (var i = 0; i < devices; i++)
            {
                var device = emulator.CreateDevice(string.Create(CultureInfo.InvariantCulture, $"bench-{sender}-{i:D3}"));
                lines.Append(device.DeviceId).Append('\t').Append(device.ConnectionString).Append('\n');
            }

            await File.WriteAllTextAsync(DevicesFile(work, sender), lines.ToString()).ConfigureAwait(false);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"HUB {emulator.MqttTlsPort} {emulator.CaCertificatePath}"));
        await Console.In.ReadToEndAsync().ConfigureAwait(false);
        return 0;
    }

    public static string DevicesFile(string work, string sender) => Path.Combine(work, sender + ".devices");
}
