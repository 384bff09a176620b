using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service;

namespace IoTHubMqtt.Core.Tests.Service;

/// <summary>
/// Retries against a scripted HTTPS server on loopback that answers each request with the next canned response,
/// for the answers the emulator does not give on demand (5xx, a dropped connection).
/// </summary>
public sealed class ServiceClientRetryTests : IAsyncDisposable
{
    private const string DeviceJson = "{\"deviceId\":\"d1\",\"etag\":\"e1\",\"status\":\"enabled\",\"authentication\":{\"type\":\"sas\",\"symmetricKey\":{\"primaryKey\":\"cGFzc3dvcmRwYXNzd29yZA==\"}}}";
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly X509Certificate2 certificate;
    private readonly string caPath = Path.Combine(Path.GetTempPath(), $"retry-ca-{Guid.NewGuid():N}.pem");
    private readonly CancellationTokenSource stop = new();
    private readonly Queue<string?> script = new();
    private int requests;
    private Task? server;

    public ServiceClientRetryTests()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        certificate = X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx), null);
        File.WriteAllText(caPath, created.ExportCertificatePem());
        listener.Start();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Each entry answers one request: an HTTP response, or null to drop the connection.</summary>
    private IoTHubServiceClient Serve(params string?[] responses) => ServeWith(null, responses);

    private IoTHubServiceClient ServeWith(Func<IoTHubServiceOptions, IoTHubServiceOptions>? configure, params string?[] responses)
    {
        foreach (var response in responses)
        {
            script.Enqueue(response);
        }

        server = Task.Run(ServeAsync);
        var options = new IoTHubServiceOptions
        {
            ConnectionString = $"HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey={SharedAccessKeys.Generate()}",
            Port = ((IPEndPoint)listener.LocalEndpoint).Port,
            CaCertificatePath = caPath,
            UseSystemTrustStore = false,
            RetryInitialDelay = TimeSpan.FromMilliseconds(10),
            RetryMaxDelay = TimeSpan.FromMilliseconds(50),
            MaxRetries = 3,
            RequestTimeout = TimeSpan.FromSeconds(10),
        };
        return new IoTHubServiceClient(configure?.Invoke(options) ?? options);
    }

    private static string Response(int status, string body, string extraHeaders = "") =>
        $"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n{extraHeaders}\r\n{body}";

    private async Task ServeAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            using var client = await listener.AcceptTcpClientAsync(stop.Token);
            await using var tls = new SslStream(client.GetStream());
            await tls.AuthenticateAsServerAsync(certificate);
            var buffer = new byte[16384];
            var read = 0;
            while (!Encoding.ASCII.GetString(buffer, 0, read).Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                var n = await tls.ReadAsync(buffer.AsMemory(read), stop.Token);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            Interlocked.Increment(ref requests);
            var response = script.Count > 0 ? script.Dequeue() : Response(500, "{}");
            if (response is null)
            {
                client.Client.LingerState = new LingerOption(true, 0);
                continue; // dropped without an answer
            }

            await tls.WriteAsync(Encoding.UTF8.GetBytes(response), stop.Token);
            await tls.FlushAsync(stop.Token);
        }
    }

    [Fact]
    public async Task ServerErrors_AreRetried_UntilTheAnswerComes()
    {
        using var service = Serve(Response(503, "{\"Message\":\"ErrorCode:ServiceUnavailable;busy\"}"), Response(500, "{}"), Response(200, DeviceJson));

        var device = await service.GetDeviceAsync("d1", Ct);

        Assert.Equal("d1", device.DeviceId);
        Assert.Equal(3, requests);
        Assert.Equal(2, service.RetryCount);
    }

    [Fact]
    public async Task DroppedConnections_AreRetried()
    {
        // HttpClient resends on its own when a connection drops before any answer; an answer cut off mid-body needs the client's retry.
        var truncated = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\nConnection: close\r\n\r\n{\"deviceId\":";
        using var service = Serve(null, truncated, truncated, Response(200, DeviceJson));

        var device = await service.GetDeviceAsync("d1", Ct);

        Assert.Equal("e1", device.ETag);
        Assert.Equal(4, requests);
        Assert.Equal(2, service.RetryCount);
    }

    [Fact]
    public async Task ServerErrors_BeyondTheRetries_AreIoTHubRequestFailed_WithTheHubCode()
    {
        using var service = Serve(Enumerable.Repeat(Response(503, "{\"Message\":\"ErrorCode:ServerBusy;try later\"}"), 4).ToArray<string?>());

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.GetDeviceAsync("d1", Ct));

        Assert.Equal("IoTHubRequestFailed", error.ErrorId);
        Assert.Contains("503 ServerBusy: try later", error.Message, StringComparison.Ordinal);
        Assert.Equal(4, requests);
    }

    [Fact]
    public async Task Throttled_WithRetryAfter_WaitsThatLong_OnTheClientsClock()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var waiting = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var service = ServeWith(o => new IoTHubServiceOptions
        {
            ConnectionString = o.ConnectionString, Port = o.Port, CaCertificatePath = o.CaCertificatePath, UseSystemTrustStore = false,
            TimeProvider = clock, Log = line => waiting.TrySetResult(line),
        }, Response(429, "{}", "Retry-After: 7\r\n"), Response(200, DeviceJson));

        var get = service.GetDeviceAsync("d1", Ct);
        var line = await waiting.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        clock.Advance(TimeSpan.FromSeconds(6));
        var early = get.IsCompleted;
        clock.Advance(TimeSpan.FromSeconds(1));
        var device = await get.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Contains("waiting 7 s", line, StringComparison.Ordinal);
        Assert.False(early);
        Assert.Equal("d1", device.DeviceId);
        Assert.Equal(1, service.ThrottledCount);
    }

    [Fact]
    public async Task MethodGatewayTimeout_IsNotRetried_AndIsMethodTimedOut()
    {
        using var service = Serve(Response(504, "{\"Message\":\"ErrorCode:GatewayTimeoutException;Timed out waiting for the response from device d1.\"}"));

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.InvokeMethodAsync("d1", "m", null, TimeSpan.FromSeconds(5), TimeSpan.Zero, Ct));

        Assert.Equal("MethodTimedOut", error.ErrorId);
        Assert.Equal(1, requests);
    }

    [Theory]
    [InlineData(503, "ServiceUnavailable")]
    [InlineData(500, "ServerError")]
    public async Task AnswerWhoseErrorIsTransient_IsRetried(int status, string code)
    {
        Assert.True(ServiceErrors.FromResponse((HttpStatusCode)status, code, "{}", "d1", "Get device").IsTransient);
        using var service = Serve(Response(status, "{}", $"iothub-errorcode: {code}\r\n"), Response(200, DeviceJson));

        var device = await service.GetDeviceAsync("d1", Ct);

        Assert.Equal("d1", device.DeviceId);
        Assert.Equal(2, requests);
        Assert.Equal(1, service.RetryCount);
    }

    [Theory]
    [InlineData(400, "ArgumentInvalid", ErrorIds.IoTHubBadRequest)]
    [InlineData(403, "IotHubQuotaExceeded", ErrorIds.IoTHubForbidden)]
    [InlineData(404, "DeviceNotFound", ErrorIds.DeviceNotFound)]
    [InlineData(405, "MethodNotAllowed", ErrorIds.IoTHubRequestFailed)]
    [InlineData(412, "PreconditionFailed", ErrorIds.PreconditionFailed)]
    public async Task AnswerWhoseErrorIsNotTransient_IsNotRetried(int status, string code, string errorId)
    {
        using var service = Serve(Response(status, "{}", $"iothub-errorcode: {code}\r\n"), Response(200, DeviceJson));

        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => service.GetDeviceAsync("d1", Ct));

        Assert.Equal(errorId, error.ErrorId);
        Assert.False(error.IsTransient);
        Assert.Equal(1, requests);
        Assert.Equal(0, service.RetryCount);
    }

    [Fact]
    public void GatewayTimeout_IsTransient_ExceptForADirectMethod()
    {
        Assert.True(ServiceErrors.FromResponse(HttpStatusCode.GatewayTimeout, null, "{}", "d1", "Get device").IsTransient);
        Assert.False(ServiceErrors.FromResponse(HttpStatusCode.GatewayTimeout, null, "{}", "d1", "Invoke method", isMethodCall: true).IsTransient);
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Stop();
        if (server is not null)
        {
            try
            {
                await server;
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
            {
            }
        }

        certificate.Dispose();
        stop.Dispose();
        File.Delete(caPath);
    }
}
