using System.Text.Json.Nodes;
using IoTHubMqtt.Module.Tests.Harness;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Module.Tests.Interop;

/// <summary>
/// A device written with the official Azure IoT Node.js SDK (tests/interop/device.js) running as a node process.
/// It prints one JSON line per event ({"event":"connected"}, {"event":"c2d",...}); this class reads them.
/// </summary>
public sealed class NodeSdkDevice : IDisposable
{
    private static readonly TimeSpan EventTimeout = TimeSpan.FromSeconds(30);
    private readonly RunningProcess process;
    private readonly List<string> seen = [];

    private NodeSdkDevice(RunningProcess process) => this.process = process;

    /// <summary>tests/interop, where package.json and the scripts are.</summary>
    public static string InteropDirectory => Path.Combine(TestPaths.RepoRoot, "tests", "interop");

    /// <summary>The node executable on PATH, or null.</summary>
    public static string? FindNode() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, OperatingSystem.IsWindows() ? "node.exe" : "node"))
            .FirstOrDefault(File.Exists);

    /// <summary>Skips the calling test (with the reason) unless node and the SDK package <paramref name="package"/> are installed; returns node's path.</summary>
    public static string RequireNodeOrSkip(string package = "azure-iot-device-mqtt")
    {
        var node = FindNode();
        Assert.SkipWhen(node is null, "node is not installed: the Azure IoT Node.js SDK interop tests need Node.js (.ci/run installs nodejs and npm).");
        Assert.SkipUnless(
            Directory.Exists(Path.Combine(InteropDirectory, "node_modules", package)),
            "tests/interop/node_modules is missing: run `npm ci --prefix tests/interop` (.ci/run does) to install the Azure IoT Node.js SDKs.");
        return node!;
    }

    /// <summary>Starts device.js and waits until it has connected, reported its twin property and sent its telemetry.</summary>
    public static async Task<NodeSdkDevice> StartAsync(string node, string connectionString, string caCertificatePath)
    {
        var device = new NodeSdkDevice(ExternalProcess.Start(node, Path.Combine(InteropDirectory, "device.js"), connectionString, caCertificatePath));
        try
        {
            await device.WaitForAsync("connected");
            await device.WaitForAsync("reported");
            await device.WaitForAsync("sent");
            return device;
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>Reads events until one named <paramref name="name"/> that <paramref name="match"/> accepts; fails on an error event or a timeout.</summary>
    public async Task<JsonObject> WaitForAsync(string name, Func<JsonObject, bool>? match = null)
    {
        var deadline = DateTime.UtcNow + EventTimeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            string line;
            try
            {
                line = await process.ReadLineAsync(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1));
            }
            catch (TimeoutException ex)
            {
                throw new TimeoutException($"The Node SDK device printed no '{name}' event within {EventTimeout}. Events: {string.Join(" ", seen)}", ex);
            }

            seen.Add(line);
            if (JsonNode.Parse(line) is not JsonObject json)
            {
                continue;
            }

            var kind = (string?)json["event"];
            Assert.False(kind == "error", $"The Node SDK device reported an error: {line} (stderr: {process.Error})");
            if (kind == name && (match is null || match(json)))
            {
                return json;
            }
        }
    }

    /// <summary>Kills node (the test never waits on a clean shutdown).</summary>
    public void Dispose() => process.Dispose();
}
