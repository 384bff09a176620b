using System.Text.Json.Nodes;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// The official Azure IoT Node.js SDKs (tests/interop, pinned in its package.json) as peers of the emulator: scripts that
/// print one JSON line per step. Tests using them are skipped, saying why, when node or the packages are not installed.
/// </summary>
internal static class NodePeer
{
    /// <summary>tests/interop of this checkout.</summary>
    public static string InteropDirectory
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "tests", "interop");
                if (File.Exists(Path.Combine(candidate, "package.json")))
                {
                    return candidate;
                }
            }

            throw new InvalidOperationException($"No tests/interop above {AppContext.BaseDirectory}.");
        }
    }

    /// <summary>Skips the test unless node and the npm package <paramref name="package"/> are installed; returns node's path.</summary>
    public static string RequireOrSkip(string package)
    {
        var node = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, OperatingSystem.IsWindows() ? "node.exe" : "node"))
            .FirstOrDefault(File.Exists);
        Assert.SkipWhen(node is null, "node is not installed: the Azure IoT Node.js SDK interop tests need Node.js (.ci/run installs nodejs and npm).");
        Assert.SkipUnless(Directory.Exists(Path.Combine(InteropDirectory, "node_modules", package)),
            $"tests/interop/node_modules/{package} is missing: run `npm ci --prefix tests/interop` (.ci/run does) to install the Azure IoT Node.js SDKs.");
        return node!;
    }

    /// <summary>Runs a script of tests/interop to its end; returns its events, failing the test on an error event or a non-zero exit.</summary>
    public static async Task<List<JsonObject>> RunAsync(string node, string script, IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        using var process = ExternalProcess.Start(node, environment, [Path.Combine(InteropDirectory, script), .. arguments]);
        var (exitCode, output, error) = await process.WaitAsync(TimeSpan.FromSeconds(90));
        var events = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => JsonNode.Parse(line) as JsonObject).OfType<JsonObject>().ToList();
        var failure = events.FirstOrDefault(e => (string?)e["event"] == "error");
        Assert.True(failure is null && exitCode == 0, $"{script} failed (exit {exitCode}): {failure?.ToJsonString() ?? ""} {error}");
        return events;
    }

    /// <summary>The one event named <paramref name="name"/>.</summary>
    public static JsonObject Event(this List<JsonObject> events, string name) => Assert.Single(events, e => (string?)e["event"] == name);
}
