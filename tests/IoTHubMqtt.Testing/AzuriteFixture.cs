using System.Text.RegularExpressions;

namespace IoTHubMqtt.Testing;

/// <summary>
/// Azurite, Microsoft's Azure Storage server (npm azurite, pinned in tests/interop/package.json), as a blob service on a
/// loopback port the system chooses, in memory, with telemetry off; started by the tests and stopped with the fixture.
/// Usable as an xunit class or collection fixture. When node or the package is missing, <see cref="Missing"/> says why
/// (tests skip with that reason) and nothing is started.
/// </summary>
public sealed partial class AzuriteFixture : IAsyncDisposable, IDisposable
{
    /// <summary>Azurite's development account (the well-known name and key Azurite documents for local use).</summary>
    public const string AccountName = "devstoreaccount1";

    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly RunningProcess? process;

    public AzuriteFixture()
    {
        var node = Node;
        var script = Path.Combine(InteropDirectory, "node_modules", "azurite", "dist", "src", "blob", "main.js");
        if (node is null)
        {
            Missing = "node is not installed: the blob storage tests run Azurite with Node.js (.ci/run installs nodejs and npm).";
            return;
        }

        if (!File.Exists(script))
        {
            Missing = "tests/interop/node_modules/azurite is missing: run `npm ci --prefix tests/interop` (.ci/run does).";
            return;
        }

        process = ExternalProcess.Start(node, script, "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence", "--extentMemoryLimit", "512",
            "--skipApiVersionCheck", "--loose", "--disableTelemetry");
        try
        {
            // Azurite prints "Azurite Blob service successfully listens on http://127.0.0.1:PORT" when it is ready.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
            while (true)
            {
                var left = deadline - DateTime.UtcNow;
                var line = process.ReadLineAsync(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1)).GetAwaiter().GetResult();
                if (Listening().Match(line) is { Success: true } match)
                {
                    BlobEndpoint = new Uri(match.Groups[1].Value.TrimEnd('/') + "/" + AccountName);
                    break;
                }
            }
        }
        catch
        {
            process.Dispose();
            throw;
        }
    }

    /// <summary>Why Azurite is not running here (node or the package missing), or null when it runs.</summary>
    public string? Missing { get; }

    /// <summary>The blob endpoint of the development account, e.g. http://127.0.0.1:PORT/devstoreaccount1.</summary>
    public Uri? BlobEndpoint { get; }

    /// <summary>A storage connection string for the development account (secret in spirit, public in fact).</summary>
    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};BlobEndpoint={BlobEndpoint ?? throw new InvalidOperationException(Missing)};";

    /// <summary>A container name unique to this run.</summary>
    public static string NewContainerName(string prefix = "devices") => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 33)].ToLowerInvariant();

    /// <summary>The node executable on PATH, or null.</summary>
    public static string? Node { get; } = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, OperatingSystem.IsWindows() ? "node.exe" : "node")).FirstOrDefault(File.Exists);

    /// <summary>tests/interop: the pinned Node.js peers (package.json) and their scripts.</summary>
    public static string InteropDirectory { get; } = FindInteropDirectory();

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

    [GeneratedRegex(@"listens on (https?://\S+)")]
    private static partial Regex Listening();

    public ValueTask DisposeAsync()
    {
        process?.Dispose();
        return ValueTask.CompletedTask;
    }

    public void Dispose() => process?.Dispose();
}
