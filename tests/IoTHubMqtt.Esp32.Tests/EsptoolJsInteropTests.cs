using System.Reflection;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using IoTHubMqtt.Esp32.Simulator;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>
/// The simulator as Espressif's own flasher sees it: esptool-js (npm, Apache-2.0, tests/interop/esptool.mjs) connects over TCP,
/// detects the chip, uploads its own stub (not the one the core embeds), changes baud, writes compressed, verifies by MD5 and
/// reads back, unchanged, on every simulated chip. Skipped (with the reason) when node or tests/interop/node_modules is missing.
/// </summary>
public sealed class EsptoolJsInteropTests
{
    private static readonly string RepoRoot = typeof(EsptoolJsInteropTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepoRoot").Value!;

    private static string InteropDirectory => Path.Combine(RepoRoot, "tests", "interop");

    private static string RequireNodeOrSkip()
    {
        var node = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, OperatingSystem.IsWindows() ? "node.exe" : "node"))
            .FirstOrDefault(File.Exists);
        Assert.SkipWhen(node is null, "node is not installed: the esptool-js interop tests need Node.js (.ci/run installs nodejs and npm).");
        Assert.SkipUnless(
            Directory.Exists(Path.Combine(InteropDirectory, "node_modules", "esptool-js")),
            "tests/interop/node_modules is missing: run `npm ci --prefix tests/interop` (.ci/run does) to install esptool-js.");
        return node!;
    }

    [Theory]
    [InlineData(SimulatedChipType.Esp32, "ESP32")]
    [InlineData(SimulatedChipType.Esp32S2, "ESP32-S2")]
    [InlineData(SimulatedChipType.Esp32S3, "ESP32-S3")]
    [InlineData(SimulatedChipType.Esp32C3, "ESP32-C3")]
    [InlineData(SimulatedChipType.Esp32C6, "ESP32-C6")]
    [InlineData(SimulatedChipType.Esp32H2, "ESP32-H2")]
    public async Task EsptoolJs_ConnectsDetectsUploadsItsStubWritesVerifiesReadsBack(SimulatedChipType chip, string chipName)
    {
        var node = RequireNodeOrSkip();
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = chip });
        var image = TestImages.FirmwareLike(100 * 1024, 50 + (int)chip);
        var path = Path.Combine(Path.GetTempPath(), $"esptool-js-{Guid.NewGuid():N}.bin");
        await File.WriteAllBytesAsync(path, image, TestContext.Current.CancellationToken);
        try
        {
            var (exit, output, error) = await ExternalProcess.RunAsync(node, TimeSpan.FromMinutes(2), Path.Combine(InteropDirectory, "esptool.mjs"), "127.0.0.1", server.TcpPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "0x10000", path);
            var events = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!.AsObject()).ToDictionary(e => (string)e["event"]!);

            Assert.True(exit == 0, $"esptool-js failed: {output} {error}");
            Assert.Equal(chipName, (string?)events["chip"]["name"]);
            Assert.True((bool)events["stub"]["running"]!);
            var expected = Convert.ToHexString(MD5.HashData(image)).ToLowerInvariant();
            Assert.Equal(expected, (string?)events["verified"]["md5"]);
            Assert.Equal(expected, (string?)events["read"]["md5"]);
            Assert.Equal(image, server.Simulator.Flash.AsSpan(0x10000, image.Length).ToArray());
            Assert.True(server.Simulator.CountOf(0x11) > 0, "written with compressed FLASH_DEFL_DATA blocks");
            Assert.Equal(921600, server.Simulator.CurrentBaud);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
