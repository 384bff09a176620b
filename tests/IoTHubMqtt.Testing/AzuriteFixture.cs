using System.Net;
using System.Net.Sockets;

namespace IoTHubMqtt.Testing;

/// <summary>
/// Azurite (Microsoft's Azure Storage server, the npm package pinned in tests/interop) serving blobs on a free loopback
/// port with a data folder of its own, started by the fixture and stopped (the process killed, the folder deleted)
/// when it is disposed. Usable as an xunit class fixture; <see cref="Missing"/> says why it cannot run (tests skip).
/// Clients use <see cref="ConnectionString"/> (the well-known development account) or <see cref="ContainerUri"/>.
/// </summary>
public sealed class AzuriteFixture : IAsyncDisposable, IDisposable
{
    /// <summary>The development storage account's name and key, as Azurite documents them (public, not a secret).</summary>
    public const string AccountName = "devstoreaccount1";

    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(3); // a guard against a hang, not a speed check: node starts slowly on a loaded machine
    private readonly RunningProcess? process;
    private readonly string location = Path.Combine(Path.GetTempPath(), "azurite-" + Guid.NewGuid().ToString("N")[..12]);

    public AzuriteFixture()
    {
        Missing = NodeInterop.Missing("azurite");
        if (Missing is not null)
        {
            return;
        }

        Directory.CreateDirectory(location);
        BlobPort = FreePort();
        process = ExternalProcess.Start(NodeInterop.Node!, new Dictionary<string, string>(),
            Path.Combine(NodeInterop.Directory, "node_modules", "azurite", "dist", "src", "blob", "main.js"),
            "--blobHost", "127.0.0.1", "--blobPort", BlobPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--location", location, "--silent", "--skipApiVersionCheck", "--loose", "--disableProductStyleUrl");
        WaitUntilListening();
    }

    /// <summary>Why Azurite cannot run here (node or the package missing), or null when it runs.</summary>
    public string? Missing { get; }

    public int BlobPort { get; }

    public Uri BlobEndpoint => new($"http://127.0.0.1:{BlobPort}/{AccountName}");

    /// <summary>The development account's connection string for this instance.</summary>
    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};BlobEndpoint={BlobEndpoint};";

    /// <summary>A new container name, unique to this run (3-63 lowercase letters, digits and dashes).</summary>
    public static string NewContainerName(string prefix = "devices") => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 33)].ToLowerInvariant();

    /// <summary>A container's URL (no SAS) on this instance.</summary>
    public Uri ContainerUri(string container) => new($"{BlobEndpoint}/{container}");

    private void WaitUntilListening()
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                probe.Connect(IPAddress.Loopback, BlobPort);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(100);
            }
            catch (SocketException ex)
            {
                Dispose();
                throw new InvalidOperationException($"Azurite did not listen on {BlobPort} within {StartTimeout}: {process?.Error}", ex);
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        process?.Dispose();
        try
        {
            if (Directory.Exists(location))
            {
                Directory.Delete(location, recursive: true);
            }
        }
        catch (IOException)
        {
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
