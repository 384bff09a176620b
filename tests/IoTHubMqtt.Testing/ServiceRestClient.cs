using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace IoTHubMqtt.Testing;

/// <summary>A plain HTTPS client for the emulator's service REST API, authenticated with an iothubowner SAS token.</summary>
public sealed class ServiceRestClient : IDisposable
{
    public const string ApiVersion = "2021-04-12";
    private readonly HttpClient http;

    public ServiceRestClient(int port, EmulatorTrust trust, string? authorization)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, cert, _, errors) => trust.Validate(cert, errors) },
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        };
        http = new HttpClient(handler) { BaseAddress = new Uri($"https://localhost:{port}/"), Timeout = TimeSpan.FromSeconds(60) };
        Authorization = authorization;
    }

    /// <summary>The Authorization header value sent with every request (null sends none).</summary>
    public string? Authorization { get; set; }

    public async Task<ServiceResponse> SendAsync(HttpMethod method, string path, JsonNode? body = null, IDictionary<string, string>? headers = null,
        byte[]? rawBody = null, bool addApiVersion = true, CancellationToken cancellationToken = default)
    {
        var uri = addApiVersion ? $"{path}{(path.Contains('?', StringComparison.Ordinal) ? "&" : "?")}api-version={ApiVersion}" : path;
        using var request = new HttpRequestMessage(method, uri);
        if (Authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", Authorization);
        }

        if (rawBody is not null)
        {
            request.Content = new ByteArrayContent(rawBody);
        }
        else if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            if (!request.Headers.TryAddWithoutValidation(name, value))
            {
                request.Content ??= new ByteArrayContent([]);
                request.Content.Headers.Remove(name);
                request.Content.Headers.TryAddWithoutValidation(name, value);
            }
        }

        using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var all = response.Headers.Concat(response.Content.Headers).ToDictionary(h => h.Key, h => string.Join(",", h.Value), StringComparer.OrdinalIgnoreCase);
        JsonNode? json = null;
        if (bytes.Length > 0 && response.Content.Headers.ContentType?.MediaType == "application/json")
        {
            json = JsonNode.Parse(bytes);
        }

        return new ServiceResponse(response.StatusCode, json, all, bytes);
    }

    public void Dispose() => http.Dispose();
}

/// <summary>Status, JSON body (when JSON) and headers of a REST answer.</summary>
public sealed record ServiceResponse(HttpStatusCode Status, JsonNode? Json, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}
