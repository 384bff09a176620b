using System.Text.Json.Nodes;

namespace IoTHubMqtt.Testing;

/// <summary>
/// The Node.js interop peers of tests/interop (official Azure SDK clients and Azurite, pinned in its package.json):
/// where they are, whether they are installed, and a script run as a process that prints one JSON line per event.
/// </summary>
public static class NodeInterop
{
    /// <summary>tests/interop, where package.json and the scripts are.</summary>
    public static string Directory { get; } = FindInteropDirectory();

    /// <summary>The node executable on PATH, or null.</summary>
    public static string? Node { get; } =
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, OperatingSystem.IsWindows() ? "node.exe" : "node"))
            .FirstOrDefault(File.Exists);

    /// <summary>Why the peers that need <paramref name="package"/> cannot run here, or null when they can.</summary>
    public static string? Missing(string package)
    {
        if (Node is null)
        {
            return "node is not installed: the interop tests with the official Node.js clients need Node.js (.ci/run installs nodejs and npm).";
        }

        return System.IO.Directory.Exists(Path.Combine(Directory, "node_modules", package))
            ? null
            : $"tests/interop/node_modules/{package} is missing: run `npm ci --prefix tests/interop` (.ci/run does).";
    }

    /// <summary>Starts a script of tests/interop with node; <paramref name="environment"/> is added to its environment.</summary>
    public static NodeScript Start(string script, IReadOnlyDictionary<string, string> environment, params string[] arguments) =>
        new(ExternalProcess.Start(Node ?? throw new InvalidOperationException(Missing("")), environment, [Path.Combine(Directory, script), .. arguments]));

    private static string FindInteropDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "interop");
            if (File.Exists(Path.Combine(candidate, "package.json")))
            {
                return candidate;
            }
        }

        return Path.Combine(AppContext.BaseDirectory, "tests", "interop");
    }
}

/// <summary>A running interop script: its JSON lines, read as they come.</summary>
public sealed class NodeScript : IDisposable
{
    private readonly RunningProcess process;
    private readonly List<string> seen = [];

    internal NodeScript(RunningProcess process) => this.process = process;

    /// <summary>
    /// Reads lines until an event named <paramref name="name"/>; an <c>error</c> event, an exit or <paramref name="timeout"/>
    /// is an exception that shows everything the script printed.
    /// </summary>
    public async Task<JsonObject> WaitForAsync(string name, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            string line;
            try
            {
                line = await process.ReadLineAsync(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1)).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
            {
                throw new TimeoutException($"The script printed no '{name}' event within {timeout}: {string.Join(" ", seen)} (stderr: {process.Error})", ex);
            }

            seen.Add(line);
            if (JsonNode.Parse(line) is not JsonObject json)
            {
                continue;
            }

            var kind = (string?)json["event"];
            if (kind == "error")
            {
                throw new InvalidOperationException($"The script reported an error: {line} (stderr: {process.Error})");
            }

            if (kind == name)
            {
                return json;
            }
        }
    }

    public void Dispose() => process.Dispose();
}
