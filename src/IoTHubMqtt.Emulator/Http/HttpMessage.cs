using System.Text;
using System.Text.Json.Nodes;

namespace IoTHubMqtt.Emulator.Http;

/// <summary>A parsed HTTP/1.1 request.</summary>
internal sealed class HttpRequest
{
    public required string Method { get; init; }

    /// <summary>The path without its query, still percent-encoded.</summary>
    public required string Path { get; init; }

    public required IReadOnlyDictionary<string, string> Query { get; init; }

    public required IReadOnlyDictionary<string, string> Headers { get; init; }

    public required byte[] Body { get; init; }

    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;

    /// <summary>Who the request was authenticated as (set by the handler), for the routes' permission checks.</summary>
    public object? Principal { get; set; }

    /// <summary>Path segments, percent-decoded.</summary>
    public string[] Segments => Path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
}

/// <summary>An HTTP response to write.</summary>
internal sealed class HttpResponse
{
    public HttpResponse(int status, byte[]? body = null, string? contentType = null)
    {
        Status = status;
        Body = body ?? [];
        if (contentType is not null)
        {
            Headers["Content-Type"] = contentType;
        }
    }

    public int Status { get; }

    public byte[] Body { get; }

    public Dictionary<string, string> Headers { get; } = new(StringComparer.OrdinalIgnoreCase);

    public static HttpResponse Json(int status, JsonNode? node) =>
        new(status, node is null ? [] : Encoding.UTF8.GetBytes(node.ToJsonString()), "application/json; charset=utf-8");

    public static string ReasonPhrase(int status) => status switch
    {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        504 => "Gateway Timeout",
        _ => "Status",
    };
}
