using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace IoTHubMqtt.Testing;

/// <summary>
/// A minimal HTTP proxy on loopback that only tunnels (<c>CONNECT host:port</c>, RFC 9110 §9.3.6), as corporate proxies
/// do for wss://. It counts the tunnels it opened and remembers their targets, so a test can assert that traffic went
/// through it. Optionally it demands Basic credentials (answering 407 otherwise).
/// </summary>
public sealed class HttpConnectProxy : IAsyncDisposable
{
    private readonly TcpListener listener;
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentBag<Task> tunnels = [];
    private readonly string? expectedAuthorization;
    private readonly Task acceptLoop;
    private int tunnelCount;
    private int refusedCount;

    public HttpConnectProxy(NetworkCredential? requiredCredential = null)
    {
        if (requiredCredential is not null)
        {
            expectedAuthorization = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{requiredCredential.UserName}:{requiredCredential.Password}"));
        }

        listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        acceptLoop = AcceptLoopAsync();
    }

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    /// <summary>The proxy's address, e.g. <c>http://127.0.0.1:40123/</c>.</summary>
    public Uri Address => new($"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}/");

    /// <summary>How many CONNECT tunnels were opened.</summary>
    public int TunnelCount => Volatile.Read(ref tunnelCount);

    /// <summary>How many CONNECT requests were refused for missing or wrong credentials.</summary>
    public int RefusedCount => Volatile.Read(ref refusedCount);

    /// <summary>The <c>host:port</c> of every tunnel, in order of arrival.</summary>
    public ConcurrentQueue<string> Targets { get; } = new();

    private async Task AcceptLoopAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            catch (InvalidOperationException) when (stop.IsCancellationRequested)
            {
                return; // stopped between the loop's check and the accept
            }

            tunnels.Add(Task.Run(() => ServeAsync(client)));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var header = await ReadHeaderAsync(stream).ConfigureAwait(false);
                var lines = header.Split("\r\n");
                var request = lines[0].Split(' ');
                if (request.Length != 3 || request[0] != "CONNECT")
                {
                    await WriteAsync(stream, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n").ConfigureAwait(false);
                    return;
                }

                if (expectedAuthorization is not null && !lines.Any(l => l.Equals("Proxy-Authorization: " + expectedAuthorization, StringComparison.OrdinalIgnoreCase)))
                {
                    Interlocked.Increment(ref refusedCount);
                    await WriteAsync(stream, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n").ConfigureAwait(false);
                    return;
                }

                var target = request[1];
                var colon = target.LastIndexOf(':');
                using var upstream = new TcpClient();
                await upstream.ConnectAsync(target[..colon].Trim('[', ']'), int.Parse(target[(colon + 1)..], CultureInfo.InvariantCulture), stop.Token).ConfigureAwait(false);
                Targets.Enqueue(target);
                Interlocked.Increment(ref tunnelCount);
                await WriteAsync(stream, "HTTP/1.1 200 Connection established\r\n\r\n").ConfigureAwait(false);
                var upstreamStream = upstream.GetStream();
                var up = PumpAsync(stream, upstreamStream);
                var down = PumpAsync(upstreamStream, stream);
                await Task.WhenAny(up, down).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or FormatException or ArgumentException)
            {
                // the client or the target went away
            }
        }
    }

    private async Task PumpAsync(Stream from, Stream to)
    {
        var buffer = new byte[16384];
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer, stop.Token).ConfigureAwait(false)) > 0)
            {
                await to.WriteAsync(buffer.AsMemory(0, read), stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Reads byte by byte up to the blank line, so nothing after the header is consumed.</summary>
    private async Task<string> ReadHeaderAsync(Stream stream)
    {
        var header = new StringBuilder();
        var one = new byte[1];
        while (header.Length < 8192)
        {
            if (await stream.ReadAsync(one, stop.Token).ConfigureAwait(false) == 0)
            {
                throw new IOException("The client closed the connection before the request header ended.");
            }

            header.Append((char)one[0]);
            if (header.Length >= 4 && header[^1] == '\n' && header[^2] == '\r' && header[^3] == '\n' && header[^4] == '\r')
            {
                return header.ToString(0, header.Length - 4);
            }
        }

        throw new IOException("The request header is too long.");
    }

    private Task WriteAsync(Stream stream, string text) => stream.WriteAsync(Encoding.ASCII.GetBytes(text), stop.Token).AsTask();

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        listener.Stop();
        await acceptLoop.ConfigureAwait(false);
        await Task.WhenAll(tunnels).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        stop.Dispose();
    }
}
