using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.NanoFramework;

namespace IoTHubMqtt.Core.Tests.NanoFramework;

public sealed class LittleFsImageTests
{
    private const int BlockSize = 4096;

    private static byte[] Random(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(300)]
    [InlineData(4096)]
    [InlineData(4097)]
    [InlineData(8184)]
    [InlineData(8185)]
    [InlineData(70000)]
    public void Build_ReadRootFiles_RoundTripsAnySize(int length)
    {
        var content = Random(length, length);

        var image = LittleFsImage.Build(BlockSize, 64, [("file.bin", content)]);

        Assert.Equal(content, LittleFsImage.ReadRootFiles(image)["file.bin"]);
    }

    [Fact]
    public void Build_SeveralFiles_AllReadBack_EmptyFileToo()
    {
        var files = new (string, byte[])[] { ("zeta", Random(5000, 1)), ("alpha", []), ("iothub-device.cfg", Random(200, 2)), ("b", Random(9000, 3)) };

        var read = LittleFsImage.ReadRootFiles(LittleFsImage.Build(BlockSize, 64, files));

        Assert.Equal(files.Select(f => f.Item1).Order(StringComparer.Ordinal), read.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, content) in files)
        {
            Assert.Equal(content, read[name]);
        }
    }

    [Fact]
    public void Build_Layout_FollowsTheSpec()
    {
        var image = LittleFsImage.Build(BlockSize, 64, [("a", Random(10, 4))]);

        Assert.Equal(64 * BlockSize, image.Length);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(image));
        // The superblock name tag comes first, so "littlefs" sits at offset 8 of block 0; its inline struct follows.
        Assert.Equal("littlefs", Encoding.ASCII.GetString(image, 8, 8));
        Assert.Equal(0x00020000u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(20)));
        Assert.Equal((uint)BlockSize, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(24)));
        Assert.Equal(64u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(28)));
        Assert.All(image.AsSpan(BlockSize, BlockSize).ToArray(), b => Assert.Equal(0xFF, b));
        Assert.Equal(Random(10, 4), image.AsSpan(2 * BlockSize, 10).ToArray());
        Assert.All(image.AsSpan(3 * BlockSize).ToArray(), b => Assert.Equal(0xFF, b));
    }

    [Fact]
    public void ReadRootFiles_ImageTheReferenceLittlefsWroteTo_ReadsBothFiles()
    {
        using var gz = new GZipStream(File.OpenRead(Path.Combine(AppContext.BaseDirectory, "NanoFramework", "TestData", "config-partition-after-device-write.img.gz")), CompressionMode.Decompress);
        using var image = new MemoryStream();
        gz.CopyTo(image);

        var files = LittleFsImage.ReadRootFiles(image.ToArray());
        var config = DeviceConfigurationFormat.ReadConfigPartition(image.ToArray());

        Assert.Equal("hello from device", Encoding.ASCII.GetString(files["con_wifi_0"]));
        Assert.Equal("lab", config.WifiSsid);
        Assert.Equal(30, config.TelemetryIntervalSeconds);
        Assert.Contains("DeviceId=esp32-01", config.ConnectionString, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigPartition_RoundTrip()
    {
        var image = DeviceConfigurationFormat.BuildConfigPartition(new DeviceConfiguration
        {
            WifiSsid = "lab", DpsIdScope = "0ne00AAAAAA", DpsRegistrationId = "esp32-02", DpsSymmetricKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        }, 0x40000);

        Assert.Equal(0x40000, image.Length);
        Assert.Equal("esp32-02", DeviceConfigurationFormat.ReadConfigPartition(image).DpsRegistrationId);
    }

    [Fact]
    public void TornCommit_NoValidMetadata_IsCorrupt()
    {
        var image = LittleFsImage.Build(BlockSize, 8, [("a", Random(10, 5))]);
        image[12] ^= 0x01;

        Assert.Equal("LittleFsCorrupt", Assert.Throws<IoTHubMqttException>(() => LittleFsImage.ReadRootFiles(image)).ErrorId);
    }

    [Fact]
    public void Errors_HaveStableIds()
    {
        Assert.Equal("LittleFsPartitionTooSmall", Assert.Throws<IoTHubMqttException>(() => LittleFsImage.Build(BlockSize, 4, [("a", Random(3 * BlockSize, 6))])).ErrorId);
        Assert.Equal("LittleFsDuplicateFileName", Assert.Throws<IoTHubMqttException>(() => LittleFsImage.Build(BlockSize, 8, [("a", [1]), ("a", [2])])).ErrorId);
        Assert.Equal("LittleFsInvalidFileName", Assert.Throws<IoTHubMqttException>(() => LittleFsImage.Build(BlockSize, 8, [("dir/a", [1])])).ErrorId);
        Assert.Equal("LittleFsInvalidPartitionSize", Assert.Throws<IoTHubMqttException>(() => DeviceConfigurationFormat.BuildConfigPartition(
            new DeviceConfiguration { WifiSsid = "a", ConnectionString = "HostName=h.net;DeviceId=d;SharedAccessKey=AAAA" }, 5000)).ErrorId);
        Assert.Equal("DeviceConfigurationNotFound", Assert.Throws<IoTHubMqttException>(() => DeviceConfigurationFormat.ReadConfigPartition(LittleFsImage.Build(BlockSize, 8, [("other", [1])]))).ErrorId);
    }
}
