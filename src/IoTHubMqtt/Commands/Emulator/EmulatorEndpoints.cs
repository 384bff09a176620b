using System.Text.Json;
using IoTHubMqtt.Emulator;

namespace IoTHubMqtt.Commands.Emulator;

/// <summary>
/// The file Start-IoTHubEmulator -EndpointPath writes for later steps of a CI job: host name, ports, ID scope, CA path
/// and the owner connection string, as JSON. It holds a key, so it is created readable by its owner only (on Unix,
/// mode 0600 before any byte is written) and replaced atomically, so a reader never sees half of it.
/// </summary>
internal static class EmulatorEndpoints
{
    public static void Write(IoTHubEmulator emulator, string path)
    {
        var endpoints = new Dictionary<string, object>
        {
            ["HostName"] = emulator.HostName,
            ["ListenAddress"] = emulator.ListenAddress,
            ["MqttTlsPort"] = emulator.MqttTlsPort,
            ["HttpsPort"] = emulator.HttpsPort,
            ["AmqpPort"] = emulator.AmqpPort,
            ["DpsPort"] = emulator.DpsPort,
            ["IdScope"] = emulator.IdScope,
            ["CaCertificatePath"] = emulator.CaCertificatePath,
            ["OwnerConnectionString"] = emulator.OwnerConnectionString,
        };
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using (var stream = new FileStream(temporary, options))
            {
                JsonSerializer.Serialize(stream, endpoints, new JsonSerializerOptions { WriteIndented = true });
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
