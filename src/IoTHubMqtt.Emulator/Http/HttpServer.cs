using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using IoTHubMqtt.Emulator.Transport;

namespace IoTHubMqtt.Emulator.Http;

/// <summary>
/// A small HTTPS/1.1 server on the emulator's <see cref="SocketListener"/> and <see cref="TlsAcceptor"/> (keep-alive, Content-Length bodies),
/// so the emulator needs no ASP.NET. WebSocket upgrades (RFC 6455) on one path are handed to a callback.
/// </summary>
internal sealed class HttpServer : IDisposable
{
    private const int MaxHeaderBytes = 16 * 1024;
    private const int MaxBodyBytes = 1024 * 1024;
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(100);

    private readonly SocketListener listener;
    private readonly TlsAcceptor tls;
    private readonly Func<HttpRequest, CancellationToken, Task<HttpResponse>> handler;
    private readonly string webSocketPath;
    private readonly Func<WebSocket, EndPoint?, X509Certificate2?, Task> webSocketHandler;
    private readonly EmulatorLog log;

    public HttpServer(IPAddress address, int port, TlsAcceptor tls, Func<HttpRequest, CancellationToken, Task<HttpResponse>> handler,
        string webSocketPath, Func<WebSocket, EndPoint?, X509Certificate2?, Task> webSocketHandler, EmulatorLog log)
    {
        listener = new SocketListener("HTTPS", address, port, 1024, HandleConnectionAsync, log);
        this.tls = tls;
        this.handler = handler;
        this.webSocketPath = webSocketPath;
        this.webSocketHandler = webSocketHandler;
        this.log = log;
    }

    public int Port => listener.Port;

    public void Start() => listener.Start();

    public Task StopAsync() => listener.StopAsync();

    public void Dispose() => listener.Dispose();

    private async Task HandleConnectionAsync(Socket socket, CancellationToken stopping)
    {
        var remote = socket.RemoteEndPoint;
        var ssl = await tls.AcceptAsync(new NetworkStream(socket, ownsSocket: true), remote, TlsProfile.Https, stopping).ConfigureAwait(false);
        if (ssl is null)
        {
            return;
        }

        var handedOff = false;
        try
        {
            var reader = new RequestReader(ssl);
            while (!stopping.IsCancellationRequested)
            {
                HttpRequest? request;
                using (var idle = CancellationTokenSource.CreateLinkedTokenSource(stopping))
                {
                    idle.CancelAfter(IdleTimeout);
                    try
                    {
                        request = await reader.ReadAsync(idle.Token).ConfigureAwait(false);
                    }
                    catch (BadRequestException bad)
                    {
                        await WriteAsync(ssl, new HttpResponse(bad.Status), close: true, stopping).ConfigureAwait(false);
                        return;
                    }
                }

                if (request is null)
                {
                    return;
                }

                if (request.Path == webSocketPath && string.Equals(request.Header("Upgrade"), "websocket", StringComparison.OrdinalIgnoreCase))
                {
                    if (await TryUpgradeAsync(ssl, request, remote, stopping).ConfigureAwait(false))
                    {
                        handedOff = true;
                    }

                    return;
                }

                HttpResponse response;
                try
                {
                    response = await handler(request, stopping).ConfigureAwait(false);
                }
#pragma warning disable CA1031 // a handler failure is a 500 for that request, not a dead server
                catch (Exception ex) when (ex is not OperationCanceledException)
#pragma warning restore CA1031
                {
                    log.Error($"HTTP {request.Method} {request.Path} failed: {ex.GetType().Name}: {ex.Message}");
                    response = new HttpResponse(500);
                }

                var close = string.Equals(request.Header("Connection"), "close", StringComparison.OrdinalIgnoreCase);
                await WriteAsync(ssl, response, close, stopping).ConfigureAwait(false);
                if (close)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
            log.Verbose($"HTTPS connection from {remote} ended: {ex.GetType().Name}.");
        }
        finally
        {
            if (!handedOff)
            {
                await ssl.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task<bool> TryUpgradeAsync(SslStream ssl, HttpRequest request, EndPoint? remote, CancellationToken stopping)
    {
        var key = request.Header("Sec-WebSocket-Key");
        var protocols = (request.Header("Sec-WebSocket-Protocol") ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (request.Method != "GET" || string.IsNullOrEmpty(key) || request.Header("Sec-WebSocket-Version") != "13")
        {
            await WriteAsync(ssl, new HttpResponse(400), close: true, stopping).ConfigureAwait(false);
            return false;
        }

        if (!protocols.Contains("mqtt", StringComparer.OrdinalIgnoreCase))
        {
            await WriteAsync(ssl, new HttpResponse(400, Encoding.UTF8.GetBytes("The WebSocket subprotocol must be 'mqtt'."), "text/plain"), close: true, stopping).ConfigureAwait(false);
            return false;
        }

        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        var head = $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
        await ssl.WriteAsync(Encoding.ASCII.GetBytes(head), stopping).ConfigureAwait(false);
        await ssl.FlushAsync(stopping).ConfigureAwait(false);
        var webSocket = WebSocket.CreateFromStream(ssl, new WebSocketCreationOptions { IsServer = true, SubProtocol = "mqtt", KeepAliveInterval = TimeSpan.FromSeconds(30) });
        _ = Task.Run(async () =>
        {
            try
            {
                await webSocketHandler(webSocket, remote, null).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // one WebSocket session's failure must not take the server down
            catch (Exception ex)
#pragma warning restore CA1031
            {
                log.Verbose($"WebSocket session from {remote} ended: {ex.GetType().Name}.");
            }
            finally
            {
                webSocket.Dispose();
                await ssl.DisposeAsync().ConfigureAwait(false);
            }
        });
        return true;
    }

    /// <summary>Writes a response as one write (header and body in one buffer: one TLS record for small responses).</summary>
    private static async Task WriteAsync(Stream stream, HttpResponse response, bool close, CancellationToken cancellationToken)
    {
        var head = new StringBuilder(256)
            .Append(CultureInfo.InvariantCulture, $"HTTP/1.1 {response.Status} {HttpResponse.ReasonPhrase(response.Status)}\r\n")
            .Append(CultureInfo.InvariantCulture, $"Content-Length: {response.Body.Length}\r\n")
            .Append(close ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
        foreach (var (name, value) in response.Headers)
        {
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        head.Append("\r\n");
        var headText = head.ToString();
        var headLength = Encoding.ASCII.GetByteCount(headText);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(headLength + response.Body.Length);
        try
        {
            Encoding.ASCII.GetBytes(headText, buffer);
            response.Body.CopyTo(buffer, headLength);
            await stream.WriteAsync(buffer.AsMemory(0, headLength + response.Body.Length), cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private sealed class BadRequestException(int status) : Exception
    {
        public int Status { get; } = status;
    }

    /// <summary>Reads requests from a stream, keeping bytes that arrived past one request for the next.</summary>
    private sealed class RequestReader(Stream stream)
    {
        private readonly byte[] buffer = new byte[MaxHeaderBytes];
        private int start;
        private int end;

        public async Task<HttpRequest?> ReadAsync(CancellationToken cancellationToken)
        {
            int headerEnd;
            while ((headerEnd = FindHeaderEnd()) < 0)
            {
                if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                    end -= start;
                    start = 0;
                }

                if (end == buffer.Length)
                {
                    throw new BadRequestException(431);
                }

                var read = await stream.ReadAsync(buffer.AsMemory(end), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    return null;
                }

                end += read;
            }

            var headerText = Encoding.ASCII.GetString(buffer, start, headerEnd - start);
            start = headerEnd + 4;
            var lines = headerText.Split("\r\n");
            var requestLine = lines[0].Split(' ');
            if (requestLine.Length != 3 || !requestLine[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
            {
                throw new BadRequestException(400);
            }

            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var line in lines.Skip(1))
            {
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon <= 0)
                {
                    throw new BadRequestException(400);
                }

                headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
            }

            if (headers.ContainsKey("Transfer-Encoding"))
            {
                throw new BadRequestException(411);
            }

            var length = 0;
            if (headers.TryGetValue("Content-Length", out var lengthText) &&
                (!int.TryParse(lengthText, NumberStyles.None, CultureInfo.InvariantCulture, out length) || length > MaxBodyBytes))
            {
                throw new BadRequestException(length > MaxBodyBytes ? 413 : 400);
            }

            var body = new byte[length];
            var fromBuffer = Math.Min(length, end - start);
            Buffer.BlockCopy(buffer, start, body, 0, fromBuffer);
            start += fromBuffer;
            if (fromBuffer < length)
            {
                await stream.ReadExactlyAsync(body.AsMemory(fromBuffer), cancellationToken).ConfigureAwait(false);
            }

            var target = requestLine[1];
            var q = target.IndexOf('?', StringComparison.Ordinal);
            var query = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            if (q >= 0)
            {
                foreach (var pair in target[(q + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
                {
                    var eq = pair.IndexOf('=', StringComparison.Ordinal);
                    query[Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq])] = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
                }
            }

            return new HttpRequest
            {
                Method = requestLine[0],
                Path = q >= 0 ? target[..q] : target,
                Query = query,
                Headers = headers,
                Body = body,
            };
        }

        private int FindHeaderEnd()
        {
            var span = buffer.AsSpan(start, end - start);
            var index = span.IndexOf("\r\n\r\n"u8);
            return index < 0 ? -1 : start + index;
        }
    }
}
