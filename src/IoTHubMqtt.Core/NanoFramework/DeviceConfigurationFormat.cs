using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.NanoFramework;

/// <summary>
/// The device configuration container the firmware reads (firmware/docs/device-configuration.md): a 16-byte little-endian header
/// <c>"IHMC" | u16 format version (1) | u16 flags (0) | u32 body length | u32 CRC-32 (zlib) of the body</c> and a UTF-8 JSON body
/// <c>{"wifi":{"ssid","password"},"iothub":{"connectionString"} | "dps":{"idScope","registrationId","symmetricKey","globalEndpoint"},
/// "caCertificate","telemetryInterval","port"}</c>. The firmware has its own decoder (it cannot reference this assembly);
/// tests check that each reads what the other writes.
/// </summary>
public static class DeviceConfigurationFormat
{
    public const int HeaderSize = 16;
    public const ushort FormatVersion = 1;
    public const int MaxBodyLength = 64 * 1024;

    /// <summary>The file name the firmware looks for on its internal drive (I:\).</summary>
    public const string FileName = "iothub-device.cfg";

    /// <summary>The partition (in nanoFramework's partition tables) whose littlefs image holds <see cref="FileName"/>.</summary>
    public const string PartitionName = "config";

    public static byte[] Encode(DeviceConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        configuration.Validate();
        using var body = new MemoryStream();
        using (var json = new Utf8JsonWriter(body))
        {
            json.WriteStartObject();
            json.WriteStartObject("wifi");
            json.WriteString("ssid", configuration.WifiSsid);
            json.WriteString("password", configuration.WifiPassword);
            json.WriteEndObject();
            if (configuration.UsesDps)
            {
                json.WriteStartObject("dps");
                json.WriteString("idScope", configuration.DpsIdScope);
                json.WriteString("registrationId", configuration.DpsRegistrationId);
                json.WriteString("symmetricKey", configuration.DpsSymmetricKey);
                json.WriteString("globalEndpoint", configuration.DpsGlobalEndpoint ?? DeviceConfiguration.DefaultDpsEndpoint);
                json.WriteEndObject();
            }
            else
            {
                json.WriteStartObject("iothub");
                json.WriteString("connectionString", configuration.ConnectionString);
                json.WriteEndObject();
            }

            if (configuration.CaCertificatePem is not null)
            {
                json.WriteString("caCertificate", configuration.CaCertificatePem);
            }

            if (configuration.TelemetryIntervalSeconds is { } interval)
            {
                json.WriteNumber("telemetryInterval", interval);
            }

            if (configuration.Port is { } port)
            {
                json.WriteNumber("port", port);
            }

            json.WriteEndObject();
        }

        var bytes = body.ToArray();
        if (bytes.Length > MaxBodyLength)
        {
            throw new IoTHubMqttException(ErrorIds.DeviceConfigurationTooLarge,
                $"The device configuration is {bytes.Length} bytes; the firmware reads at most {MaxBodyLength}.", "Pass a smaller CA bundle.", "Configuration");
        }

        var blob = new byte[HeaderSize + bytes.Length];
        "IHMC"u8.CopyTo(blob);
        BinaryPrimitives.WriteUInt16LittleEndian(blob.AsSpan(4), FormatVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(blob.AsSpan(6), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(8), (uint)bytes.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(12), System.IO.Hashing.Crc32.HashToUInt32(bytes));
        bytes.CopyTo(blob.AsSpan(HeaderSize));
        return blob;
    }

    /// <summary>Reads a container back (e.g. from a flash dump); trailing bytes (erased flash) are ignored.</summary>
    public static DeviceConfiguration Decode(ReadOnlySpan<byte> blob)
    {
        if (blob.Length < HeaderSize)
        {
            throw Bad(ErrorIds.DeviceConfigurationTruncated, "The data is shorter than the 16-byte configuration header.");
        }

        if (!blob[..4].SequenceEqual("IHMC"u8))
        {
            throw Bad(ErrorIds.DeviceConfigurationBadMagic, "The data does not start with the 'IHMC' configuration marker.");
        }

        var version = BinaryPrimitives.ReadUInt16LittleEndian(blob[4..]);
        if (version != FormatVersion)
        {
            throw Bad(ErrorIds.DeviceConfigurationUnsupportedVersion, $"Configuration format version {version} is not supported (expected {FormatVersion}).");
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(blob[8..]);
        if (length == 0 || length > MaxBodyLength || HeaderSize + (long)length > blob.Length)
        {
            throw Bad(ErrorIds.DeviceConfigurationTruncated, $"The configuration body length {length} does not fit the data.");
        }

        var body = blob.Slice(HeaderSize, (int)length);
        if (BinaryPrimitives.ReadUInt32LittleEndian(blob[12..]) != System.IO.Hashing.Crc32.HashToUInt32(body))
        {
            throw Bad(ErrorIds.DeviceConfigurationCrcMismatch, "The configuration is corrupt (CRC-32 mismatch).");
        }

        try
        {
            using var doc = JsonDocument.Parse(body.ToArray());
            var root = doc.RootElement;
            var wifi = root.GetProperty("wifi");
            string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            int? Int(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : null;
            var hasDps = root.TryGetProperty("dps", out var dps);
            var hasHub = root.TryGetProperty("iothub", out var hub);
            return new DeviceConfiguration
            {
                WifiSsid = Str(wifi, "ssid") ?? string.Empty,
                WifiPassword = Str(wifi, "password") ?? string.Empty,
                ConnectionString = hasHub ? Str(hub, "connectionString") : null,
                DpsIdScope = hasDps ? Str(dps, "idScope") : null,
                DpsRegistrationId = hasDps ? Str(dps, "registrationId") : null,
                DpsSymmetricKey = hasDps ? Str(dps, "symmetricKey") : null,
                DpsGlobalEndpoint = hasDps ? Str(dps, "globalEndpoint") : null,
                CaCertificatePem = Str(root, "caCertificate"),
                TelemetryIntervalSeconds = Int("telemetryInterval"),
                Port = Int("port"),
            };
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw Bad(ErrorIds.DeviceConfigurationInvalidJson, "The configuration body is not the expected JSON.");
        }
    }

    /// <summary>
    /// A littlefs image for the device's <c>config</c> partition (nanoFramework's internal drive I:) holding the configuration
    /// as <see cref="FileName"/>; <paramref name="partitionSize"/> comes from the partition table and must be whole blocks.
    /// </summary>
    public static byte[] BuildConfigPartition(DeviceConfiguration configuration, int partitionSize, int blockSize = LittleFsImage.DefaultBlockSize)
    {
        var file = Encode(configuration);
        if (blockSize <= 0 || partitionSize <= 0 || partitionSize % blockSize != 0)
        {
            throw new IoTHubMqttException(ErrorIds.LittleFsInvalidPartitionSize,
                $"The partition size {partitionSize} is not a whole number of {blockSize}-byte blocks.", "Use the size from the partition table.", "Configuration");
        }

        return LittleFsImage.Build(blockSize, partitionSize / blockSize, [(FileName, file)]);
    }

    /// <summary>Reads the configuration back from a dump of the <c>config</c> partition.</summary>
    public static DeviceConfiguration ReadConfigPartition(ReadOnlySpan<byte> partition, int blockSize = LittleFsImage.DefaultBlockSize)
    {
        var files = LittleFsImage.ReadRootFiles(partition, blockSize);
        if (!files.TryGetValue(FileName, out var file))
        {
            throw new IoTHubMqttException(ErrorIds.DeviceConfigurationNotFound,
                $"The partition has no '{FileName}'.", "Write the configuration with Install-Esp32Firmware -Configuration.", "Configuration");
        }

        return Decode(file);
    }

    private static IoTHubMqttException Bad(string errorId, string message) =>
        new(errorId, message, "Write the configuration again with Install-Esp32Firmware -Configuration.", "Configuration");
}
