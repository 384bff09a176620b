using System.Buffers.Binary;
using System.Text;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.NanoFramework;

namespace IoTHubMqtt.Core.Tests.NanoFramework;

public sealed class DeviceConfigurationFormatTests
{
    private const string Key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    private const string ConnectionString = "HostName=hub.azure-devices.net;DeviceId=esp32-01;SharedAccessKey=" + Key;

    [Fact]
    public void Encode_HeaderAndJsonBody_AsDocumented()
    {
        var blob = DeviceConfigurationFormat.Encode(new DeviceConfiguration { WifiSsid = "lab", WifiPassword = "12345678", ConnectionString = ConnectionString, TelemetryIntervalSeconds = 30 });

        Assert.Equal("IHMC"u8.ToArray(), blob[..4]);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(blob.AsSpan(4)));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(blob.AsSpan(6)));
        Assert.Equal(blob.Length - 16, (int)BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(8)));
        using var json = System.Text.Json.JsonDocument.Parse(blob.AsMemory(16));
        Assert.Equal("lab", json.RootElement.GetProperty("wifi").GetProperty("ssid").GetString());
        Assert.Equal(ConnectionString, json.RootElement.GetProperty("iothub").GetProperty("connectionString").GetString());
        Assert.Equal(30, json.RootElement.GetProperty("telemetryInterval").GetInt32());
        Assert.False(json.RootElement.TryGetProperty("dps", out _));
    }

    [Fact]
    public void EncodeDecode_Dps_RoundTripsWithDefaultEndpoint()
    {
        var decoded = DeviceConfigurationFormat.Decode(DeviceConfigurationFormat.Encode(new DeviceConfiguration
        {
            WifiSsid = "lab", DpsIdScope = "0ne00AAAAAA", DpsRegistrationId = "esp32-01", DpsSymmetricKey = Key, Port = 8884,
        }));

        Assert.True(decoded.UsesDps);
        Assert.Equal(("0ne00AAAAAA", "esp32-01", Key, DeviceConfiguration.DefaultDpsEndpoint, 8884), (decoded.DpsIdScope, decoded.DpsRegistrationId, decoded.DpsSymmetricKey, decoded.DpsGlobalEndpoint, decoded.Port));
        Assert.Null(decoded.ConnectionString);
        Assert.Null(decoded.TelemetryIntervalSeconds);
    }

    public static TheoryData<string, DeviceConfiguration> Invalid => new()
    {
        { "DeviceConfigurationInvalidSsid", new DeviceConfiguration { WifiSsid = "", ConnectionString = ConnectionString } },
        { "DeviceConfigurationInvalidSsid", new DeviceConfiguration { WifiSsid = new string('é', 17), ConnectionString = ConnectionString } },
        { "DeviceConfigurationInvalidWifiPassword", new DeviceConfiguration { WifiSsid = "a", WifiPassword = "1234567", ConnectionString = ConnectionString } },
        { "DeviceConfigurationBothCredentials", new DeviceConfiguration { WifiSsid = "a", ConnectionString = ConnectionString, DpsIdScope = "0ne" } },
        { "DeviceConfigurationNoCredential", new DeviceConfiguration { WifiSsid = "a" } },
        { "DeviceConfigurationNotDeviceConnectionString", new DeviceConfiguration { WifiSsid = "a", ConnectionString = "HostName=h.net;DeviceId=d;ModuleId=m;SharedAccessKey=" + Key } },
        { "DeviceConfigurationInvalidIdScope", new DeviceConfiguration { WifiSsid = "a", DpsRegistrationId = "r", DpsSymmetricKey = Key } },
        { "DeviceConfigurationInvalidRegistrationId", new DeviceConfiguration { WifiSsid = "a", DpsIdScope = "0ne", DpsRegistrationId = "Has Space", DpsSymmetricKey = Key } },
        { "KeyNotBase64", new DeviceConfiguration { WifiSsid = "a", DpsIdScope = "0ne", DpsRegistrationId = "r", DpsSymmetricKey = "*secret*" } },
        { "DeviceConfigurationInvalidCaCertificate", new DeviceConfiguration { WifiSsid = "a", ConnectionString = ConnectionString, CaCertificatePem = "MIIB..." } },
        { "DeviceConfigurationInvalidTelemetryInterval", new DeviceConfiguration { WifiSsid = "a", ConnectionString = ConnectionString, TelemetryIntervalSeconds = 86401 } },
        { "DeviceConfigurationInvalidPort", new DeviceConfiguration { WifiSsid = "a", ConnectionString = ConnectionString, Port = 0 } },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Encode_Invalid_HasStableErrorIdAndNoSecret(string errorId, DeviceConfiguration configuration)
    {
        var ex = Assert.Throws<IoTHubMqttException>(() => DeviceConfigurationFormat.Encode(configuration));

        Assert.Equal(errorId, ex.ErrorId);
        Assert.DoesNotContain(Key, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("1234567", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ToString_ShowsTargetNotSecrets()
    {
        var text = new DeviceConfiguration { WifiSsid = "lab", WifiPassword = "wifi-secret", ConnectionString = ConnectionString }.ToString();

        Assert.Equal("Wi-Fi 'lab', hub.azure-devices.net/esp32-01", text);
    }

    [Fact]
    public void Decode_CorruptOrForeignData_HasStableErrorIds()
    {
        var blob = DeviceConfigurationFormat.Encode(new DeviceConfiguration { WifiSsid = "lab", ConnectionString = ConnectionString });

        Assert.Equal("DeviceConfigurationTruncated", Assert.Throws<IoTHubMqttException>(() => DeviceConfigurationFormat.Decode(blob.AsSpan(0, 10))).ErrorId);
        Assert.Equal("DeviceConfigurationTruncated", Assert.Throws<IoTHubMqttException>(() => DeviceConfigurationFormat.Decode(blob.AsSpan(0, blob.Length - 1))).ErrorId);
        Assert.Equal("DeviceConfigurationBadMagic", Assert.Throws<IoTHubMqttException>(() => DeviceConfigurationFormat.Decode(Encoding.ASCII.GetBytes("{\"wifi\":{}}  padding"))).ErrorId);
        var notJson = new byte[20];
        "IHMC"u8.CopyTo(notJson);
        BinaryPrimitives.WriteUInt16LittleEndian(notJson.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(notJson.AsSpan(8), 4);
        "nope"u8.CopyTo(notJson.AsSpan(16));
        BinaryPrimitives.WriteUInt32LittleEndian(notJson.AsSpan(12), System.IO.Hashing.Crc32.HashToUInt32("nope"u8));
        Assert.Equal("DeviceConfigurationInvalidJson", Assert.Throws<IoTHubMqttException>(() => DeviceConfigurationFormat.Decode(notJson)).ErrorId);
    }
}
