using System.Text;
using IoTHubDevice.Logic;
using IoTHubDevice.Logic.Configuration;
using CoreConfig = IoTHubMqtt.Core.NanoFramework.DeviceConfiguration;
using CoreFormat = IoTHubMqtt.Core.NanoFramework.DeviceConfigurationFormat;

namespace IoTHubMqtt.Firmware.Tests;

public sealed class ConfigurationTests
{
    internal const string Key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    internal const string ConnectionString = "HostName=my-hub.azure-devices.net;DeviceId=esp32-01;SharedAccessKey=" + Key;
    private const string Pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";

    [Fact]
    public void CoreEncoder_ConnectionString_FirmwareDecodesEveryField()
    {
        var blob = CoreFormat.Encode(new CoreConfig
        {
            WifiSsid = "home-net é",
            WifiPassword = "wifi-pass-1234",
            ConnectionString = ConnectionString,
            CaCertificatePem = Pem,
            TelemetryIntervalSeconds = 15,
            Port = 18883,
        });

        var config = DeviceConfiguration.Decode(blob);

        Assert.Equal("home-net é", config.WifiSsid);
        Assert.Equal("wifi-pass-1234", config.WifiPassword);
        Assert.False(config.UsesDps);
        Assert.Equal("my-hub.azure-devices.net", config.ConnectionString.HostName);
        Assert.Equal("esp32-01", config.ConnectionString.DeviceId);
        Assert.Equal(Key, config.ConnectionString.SharedAccessKey);
        Assert.Equal(Pem, config.CaCertificatePem);
        Assert.Equal(15, config.TelemetryIntervalSeconds);
        Assert.Equal(18883, config.Port);
    }

    [Fact]
    public void CoreEncoder_Dps_FirmwareDecodesAndDefaultsApply()
    {
        var blob = CoreFormat.Encode(new CoreConfig { WifiSsid = "open", DpsIdScope = "0ne00ABCDEF", DpsRegistrationId = "esp32-aa-bb", DpsSymmetricKey = Key });

        var config = DeviceConfiguration.Decode(blob);

        Assert.True(config.UsesDps);
        Assert.Equal(string.Empty, config.WifiPassword);
        Assert.Equal("0ne00ABCDEF", config.DpsIdScope);
        Assert.Equal("esp32-aa-bb", config.DpsRegistrationId);
        Assert.Equal(Key, config.DpsSymmetricKey);
        Assert.Equal("global.azure-devices-provisioning.net", config.DpsGlobalEndpoint);
        Assert.Equal(60, config.TelemetryIntervalSeconds);
        Assert.Equal(8883, config.Port);
    }

    [Fact]
    public void ConfigPartitionImage_FileTheDeviceReadsFromI_IsDecodedByTheFirmware()
    {
        var partition = CoreFormat.BuildConfigPartition(new CoreConfig { WifiSsid = "lab", WifiPassword = "12345678", ConnectionString = ConnectionString }, 0x40000);

        // On the board the littlefs driver serves this file as I:\iothub-device.cfg; here the module's reader extracts it.
        var file = IoTHubMqtt.Core.NanoFramework.LittleFsImage.ReadRootFiles(partition)[CoreFormat.FileName];
        var config = DeviceConfiguration.Decode(file);

        Assert.Equal("iothub-device.cfg", CoreFormat.FileName);
        Assert.Equal("lab", config.WifiSsid);
        Assert.Equal("esp32-01", config.ConnectionString.DeviceId);
    }

    [Fact]
    public void FirmwareContainer_CoreDecodes_WithErasedFlashAfterIt()
    {
        var json = "{\"wifi\":{\"ssid\":\"lab\",\"password\":\"12345678\"},\"iothub\":{\"connectionString\":\"" + ConnectionString + "\"},\"telemetryInterval\":5}";
        var blob = ConfigurationContainer.Write(json).Concat(Enumerable.Repeat((byte)0xFF, 4096)).ToArray();

        var config = CoreFormat.Decode(blob);

        Assert.Equal("lab", config.WifiSsid);
        Assert.Equal(ConnectionString, config.ConnectionString);
        Assert.Equal(5, config.TelemetryIntervalSeconds);
        Assert.Equal(DeviceConfiguration.Decode(blob).WifiPassword, config.WifiPassword);
    }

    [Fact]
    public void Container_HeaderLayout_IsDocumented()
    {
        var blob = ConfigurationContainer.Write("{}");

        Assert.Equal("IHMC"u8.ToArray(), blob[..4]);
        Assert.Equal(1, BitConverter.ToUInt16(blob, 4));
        Assert.Equal(0, BitConverter.ToUInt16(blob, 6));
        Assert.Equal(2u, BitConverter.ToUInt32(blob, 8));
        Assert.Equal(Crc32Reference(Encoding.ASCII.GetBytes("{}")), BitConverter.ToUInt32(blob, 12));
        Assert.Equal("{}", Encoding.UTF8.GetString(blob, 16, 2));
    }

    // Bit-by-bit CRC-32 (zlib), independent of the table-driven implementations under test.
    private static uint Crc32Reference(byte[] data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
            }
        }

        return ~crc;
    }

    [Theory]
    [InlineData(new byte[0], "ConfigurationMissing")]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF }, "ConfigurationMissing")]
    [InlineData(new byte[] { (byte)'I', (byte)'H', (byte)'M' }, "ConfigurationTruncated")]
    [InlineData(new byte[] { (byte)'X', (byte)'H', (byte)'M', (byte)'C', 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}' }, "ConfigurationBadMagic")]
    [InlineData(new byte[] { (byte)'I', (byte)'H', (byte)'M', (byte)'C', 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}' }, "ConfigurationUnsupportedVersion")]
    [InlineData(new byte[] { (byte)'I', (byte)'H', (byte)'M', (byte)'C', 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}' }, "ConfigurationTruncated")]
    public void Decode_BadContainer_HasStableErrorId(byte[] blob, string errorId)
    {
        var ex = Assert.Throws<DeviceLogicException>(() => DeviceConfiguration.Decode(blob));

        Assert.Equal(errorId, ex.ErrorId);
    }

    [Fact]
    public void Decode_FlippedBodyByte_IsCrcMismatch()
    {
        var blob = ConfigurationContainer.Write("{\"wifi\":{\"ssid\":\"a\"}}");
        blob[20] ^= 0x01;

        Assert.Equal("ConfigurationCrcMismatch", Assert.Throws<DeviceLogicException>(() => DeviceConfiguration.Decode(blob)).ErrorId);
    }

    [Theory]
    [InlineData("[]", "ConfigurationInvalidJson")]
    [InlineData("{\"wifi\":", "ConfigurationInvalidJson")]
    [InlineData("{}", "ConfigurationMissingWifi")]
    [InlineData("{\"wifi\":{\"ssid\":\"\"}}", "ConfigurationInvalidSsid")]
    [InlineData("{\"wifi\":{\"ssid\":\"123456789012345678901234567890123\"}}", "ConfigurationInvalidSsid")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\",\"password\":\"short\"},\"iothub\":{\"connectionString\":\"x\"}}", "ConfigurationInvalidWifiPassword")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"}}", "ConfigurationNoCredential")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"iothub\":{},\"dps\":{}}", "ConfigurationBothCredentials")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"iothub\":{}}", "ConfigurationMissingConnectionString")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"iothub\":{\"connectionString\":\"HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=AAAA\"}}", "ConnectionStringNotDevice")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"iothub\":{\"connectionString\":\"HostName=h;DeviceId=d\"}}", "ConnectionStringMissingKey")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"iothub\":{\"connectionString\":\"DeviceId=d;SharedAccessKey=AAAA\"}}", "ConnectionStringMissingHostName")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"iothub\":{\"connectionString\":\"HostName=h;DeviceId=d;SharedAccessKey=not*base64\"}}", "ConnectionStringKeyNotBase64")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"iothub\":{\"connectionString\":\"HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=AAAA\"}}", "ConnectionStringModuleNotSupported")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"dps\":{\"registrationId\":\"r\",\"symmetricKey\":\"AAAA\"}}", "ConfigurationInvalidIdScope")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"dps\":{\"idScope\":\"0ne1\",\"registrationId\":\"Upper\",\"symmetricKey\":\"AAAA\"}}", "ConfigurationInvalidRegistrationId")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"dps\":{\"idScope\":\"0ne1\",\"registrationId\":\"r\",\"symmetricKey\":\"%%\"}}", "ConfigurationSymmetricKeyNotBase64")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"dps\":{\"idScope\":\"0ne1\",\"registrationId\":\"r\",\"symmetricKey\":\"AAAA\"},\"caCertificate\":\"not pem\"}", "ConfigurationInvalidCaCertificate")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"dps\":{\"idScope\":\"0ne1\",\"registrationId\":\"r\",\"symmetricKey\":\"AAAA\"},\"telemetryInterval\":0}", "ConfigurationInvalidTelemetryInterval")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"dps\":{\"idScope\":\"0ne1\",\"registrationId\":\"r\",\"symmetricKey\":\"AAAA\"},\"telemetryInterval\":1.5}", "ConfigurationInvalidTelemetryInterval")]
    [InlineData("{\"wifi\":{\"ssid\":\"a\"},\"dps\":{\"idScope\":\"0ne1\",\"registrationId\":\"r\",\"symmetricKey\":\"AAAA\"},\"port\":70000}", "ConfigurationInvalidPort")]
    public void FromJson_Invalid_HasStableErrorId(string json, string errorId)
    {
        var ex = Assert.Throws<DeviceLogicException>(() => DeviceConfiguration.FromJson(json));

        Assert.Equal(errorId, ex.ErrorId);
    }

    [Fact]
    public void Errors_AndToString_NeverShowSecrets()
    {
        var config = DeviceConfiguration.FromJson("{\"wifi\":{\"ssid\":\"lab\",\"password\":\"wifi-secret-99\"},\"iothub\":{\"connectionString\":\"" + ConnectionString + "\"}}");
        var bad = Assert.Throws<DeviceLogicException>(() => DeviceConfiguration.FromJson("{\"wifi\":{\"ssid\":\"a\"},\"iothub\":{\"connectionString\":\"HostName=h;DeviceId=d;SharedAccessKey=sekr*t\"}}"));

        var text = config + " " + config.ConnectionString + " " + bad.Message;
        Assert.Contains("my-hub.azure-devices.net", text, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, text, StringComparison.Ordinal);
        Assert.DoesNotContain("wifi-secret-99", text, StringComparison.Ordinal);
        Assert.DoesNotContain("sekr", text, StringComparison.Ordinal);
    }

    [Fact]
    public void CoreValidate_RejectsWhatFirmwareRejects()
    {
        var ex = Assert.Throws<IoTHubMqtt.Core.Errors.IoTHubMqttException>(() => CoreFormat.Encode(new CoreConfig { WifiSsid = "a", WifiPassword = "short", ConnectionString = ConnectionString }));
        Assert.Equal("DeviceConfigurationInvalidWifiPassword", ex.ErrorId);

        ex = Assert.Throws<IoTHubMqtt.Core.Errors.IoTHubMqttException>(() => CoreFormat.Encode(new CoreConfig { WifiSsid = "a", ConnectionString = "HostName=h;SharedAccessKeyName=p;SharedAccessKey=" + Key }));
        Assert.Equal("DeviceConfigurationNotDeviceConnectionString", ex.ErrorId);
    }

    [Fact]
    public void CoreDecode_Corrupt_IsCrcMismatch()
    {
        var blob = CoreFormat.Encode(new CoreConfig { WifiSsid = "a", ConnectionString = ConnectionString });
        blob[^1] ^= 0x40;

        Assert.Equal("DeviceConfigurationCrcMismatch", Assert.Throws<IoTHubMqtt.Core.Errors.IoTHubMqttException>(() => CoreFormat.Decode(blob)).ErrorId);
    }
}
