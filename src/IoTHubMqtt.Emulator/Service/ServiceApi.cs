using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Emulator.Http;
using IoTHubMqtt.Emulator.Mqtt;
using IoTHubMqtt.Emulator.Provisioning;

namespace IoTHubMqtt.Emulator.Service;

/// <summary>
/// The service REST API (api-version 2021-04-12 paths: devices, twins, methods, query) plus the emulator's own
/// documented extensions under <c>/$emulator/</c> for C2D send, C2D delivery feedback and telemetry read (the real hub does those over AMQP).
/// Requests need <c>Authorization: SharedAccessSignature …</c> from a policy with the right permission.
/// </summary>
internal sealed partial class ServiceApi(HubState hub, DeviceEndpoint devices, DpsState dps, SasAuthenticator authenticator, RateLimiter limiter, EmulatorLog log)
{
    private const int DefaultPageSize = 100;

    public async Task<HttpResponse> HandleAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        try
        {
            // Who is asking comes first: a caller without a valid token gets 401 and does not use up the rate that
            // legitimate callers share (as on the hub, where throttling is per hub and counts authenticated operations).
            request.Principal = Authenticate(request);
            if (!limiter.TryAcquire(out var retryAfter))
            {
                throw HubError.Throttled(retryAfter);
            }

            return await RouteAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or JsonException or ArgumentException)
        {
            // a JSON value of the wrong type (e.g. "status": 1) or a malformed field
            return ErrorResponse(request, HubError.BadRequest("A field in the request has the wrong type or format."));
        }
        catch (HubError error)
        {
            return ErrorResponse(request, error);
        }
    }

    private HttpResponse ErrorResponse(HttpRequest request, HubError error)
    {
        if (error.Status >= 500 || error.Status == 429)
        {
            log.Information($"{request.Method} {request.Path}: {error.Status} {error.Code}");
        }

        var response = new HttpResponse(error.Status, Encoding.UTF8.GetBytes(error.ToJson()), "application/json; charset=utf-8");
        response.Headers["iothub-errorcode"] = error.Code;
        if (error.RetryAfterSeconds is { } seconds)
        {
            response.Headers["Retry-After"] = seconds.ToString(CultureInfo.InvariantCulture);
        }

        return response;
    }

    private async Task<HttpResponse> RouteAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var segments = request.Segments;
        var method = request.Method;
        if (segments.Length >= 1 && segments[0] == "$emulator")
        {
            return await RouteExtensionAsync(request, segments[1..], cancellationToken).ConfigureAwait(false);
        }

        if (!request.Query.ContainsKey("api-version"))
        {
            throw HubError.BadRequest("The api-version query parameter is required.");
        }

        if (segments.Any(s => s.Contains('/', StringComparison.Ordinal)))
        {
            throw HubError.BadRequest("An identifier in the path contains '/'.");
        }

        switch (segments)
        {
            case ["devices", "query"] when method == "POST":
                Authorize(request, HubPermissions.RegistryRead);
                return Query(request);
            case ["devices"] when method == "GET":
                Authorize(request, HubPermissions.RegistryRead);
                return HttpResponse.Json(200, hub.ListDevices(IntQuery(request, "top", 1000, 1, 1000)));
            case ["devices", var id] when method == "GET":
                Authorize(request, HubPermissions.RegistryRead);
                return WithETag(HttpResponse.Json(200, hub.GetDeviceJson(id)));
            case ["devices", var id] when method == "PUT":
                Authorize(request, HubPermissions.RegistryWrite);
                return WithETag(HttpResponse.Json(200, hub.PutDevice(id, BodyObject(request), request.Header("If-Match"))));
            case ["devices", var id] when method == "DELETE":
                Authorize(request, HubPermissions.RegistryWrite);
                hub.DeleteDevice(id, request.Header("If-Match"));
                return new HttpResponse(204);
            case ["devices", var id, "modules"] when method == "GET":
                Authorize(request, HubPermissions.RegistryRead);
                return HttpResponse.Json(200, hub.ListModules(id));
            case ["devices", var id, "modules", var mid] when method == "GET":
                Authorize(request, HubPermissions.RegistryRead);
                return WithETag(HttpResponse.Json(200, hub.GetDeviceJson($"{id}/{mid}")));
            case ["devices", var id, "modules", var mid] when method == "PUT":
                Authorize(request, HubPermissions.RegistryWrite);
                return WithETag(HttpResponse.Json(200, hub.PutModule(id, mid, BodyObject(request), request.Header("If-Match"))));
            case ["devices", var id, "modules", var mid] when method == "DELETE":
                Authorize(request, HubPermissions.RegistryWrite);
                hub.DeleteDevice($"{id}/{mid}", request.Header("If-Match"));
                return new HttpResponse(204);
            case ["twins", var id, "modules", var mid] when method == "GET":
                Authorize(request, HubPermissions.RegistryRead);
                return WithETag(HttpResponse.Json(200, hub.GetTwinJson($"{id}/{mid}")));
            case ["twins", var id, "modules", var mid] when method == "PATCH":
                Authorize(request, HubPermissions.ServiceConnect);
                return WithETag(HttpResponse.Json(200, hub.PatchTwin($"{id}/{mid}", BodyObject(request), request.Header("If-Match"))));
            case ["twins", var id, "modules", var mid] when method == "PUT":
                Authorize(request, HubPermissions.ServiceConnect);
                return WithETag(HttpResponse.Json(200, hub.ReplaceTwin($"{id}/{mid}", BodyObject(request), request.Header("If-Match"))));
            case ["twins", var id, "modules", var mid, "methods"] when method == "POST":
                Authorize(request, HubPermissions.ServiceConnect);
                return await InvokeMethodAsync($"{id}/{mid}", BodyObject(request), cancellationToken).ConfigureAwait(false);
            case ["twins", var id] when method == "GET":
                Authorize(request, HubPermissions.RegistryRead);
                return WithETag(HttpResponse.Json(200, hub.GetTwinJson(id)));
            case ["twins", var id] when method == "PATCH":
                Authorize(request, HubPermissions.ServiceConnect);
                return WithETag(HttpResponse.Json(200, hub.PatchTwin(id, BodyObject(request), request.Header("If-Match"))));
            case ["twins", var id] when method == "PUT":
                Authorize(request, HubPermissions.ServiceConnect);
                return WithETag(HttpResponse.Json(200, hub.ReplaceTwin(id, BodyObject(request), request.Header("If-Match"))));
            case ["twins", var id, "methods"] when method == "POST":
                Authorize(request, HubPermissions.ServiceConnect);
                return await InvokeMethodAsync(id, BodyObject(request), cancellationToken).ConfigureAwait(false);
            case ["enrollments", var id]:
                Authorize(request, HubPermissions.RegistryWrite);
                return dps.HandleEnrollment(method, id, group: false, method is "PUT" ? BodyObject(request) : null);
            case ["enrollmentGroups", var id]:
                Authorize(request, HubPermissions.RegistryWrite);
                return dps.HandleEnrollment(method, id, group: true, method is "PUT" ? BodyObject(request) : null);
            case ["devices" or "twins", ..]:
                throw new HubError(405, 405001, "MethodNotAllowed", $"{method} is not allowed on this resource.");
            default:
                throw new HubError(404, 404000, "NotFound", "No such resource.");
        }
    }

    /// <summary>The AMQP port served as <c>GET /$emulator/endpoints</c> (0 when AMQP is disabled), so that a client given only the HTTPS port finds it.</summary>
    public int AmqpPort { get; set; }

    private async Task<HttpResponse> RouteExtensionAsync(HttpRequest request, string[] segments, CancellationToken cancellationToken)
    {
        switch (segments)
        {
            case ["devices", var id, "messages", "devicebound"] when request.Method == "POST":
                Authorize(request, HubPermissions.ServiceConnect);
                return SendCloudToDevice(id, request);
            case ["messages", "feedback"] when request.Method == "GET":
                Authorize(request, HubPermissions.ServiceConnect);
                return ReadFeedback(request);
            case ["messages", "events"] when request.Method == "GET":
                Authorize(request, HubPermissions.ServiceConnect);
                return await ReadTelemetryAsync(request, cancellationToken).ConfigureAwait(false);
            case ["endpoints"] when request.Method == "GET":
                Authorize(request, HubPermissions.ServiceConnect);
                return HttpResponse.Json(200, new JsonObject { ["amqpPort"] = AmqpPort });
            default:
                throw new HubError(404, 404000, "NotFound", "No such emulator resource.");
        }
    }

    /// <summary>Checks that the request's (already authenticated) policy has <paramref name="needed"/>.</summary>
    private void Authorize(HttpRequest request, HubPermissions needed)
    {
        var policy = request.Principal as AccessPolicy ?? Authenticate(request);
        if ((policy.Permissions & needed) != needed)
        {
            throw HubError.Unauthorized($"The policy '{policy.Name}' lacks the {needed} permission.");
        }
    }

    /// <summary>The policy whose SAS token the request carries, or a 401 <see cref="HubError"/>.</summary>
    private AccessPolicy Authenticate(HttpRequest request)
    {
        var header = request.Header("Authorization");
        if (string.IsNullOrEmpty(header))
        {
            throw HubError.Unauthorized("The Authorization header is missing.");
        }

        AccessPolicy? policy = null;
        var token = authenticator.Validate(header, hub.HostName, info =>
        {
            if (info.PolicyName is not null && hub.Policies.TryGetValue(info.PolicyName, out var p))
            {
                policy = p;
                return [p.PrimaryKey, p.SecondaryKey];
            }

            return [];
        }, out var reason);

        if (token is null || policy is null)
        {
            throw HubError.Unauthorized($"Unauthorized: {(token is null ? reason : "the token names no policy")}.");
        }

        return policy;
    }

    private HttpResponse Query(HttpRequest request)
    {
        var body = BodyObject(request);
        var query = body["query"]?.GetValue<string>() ?? "";
        if (!SelectAllDevices().IsMatch(query))
        {
            throw HubError.BadRequest("The emulator supports the query 'SELECT * FROM devices' only.");
        }

        var skip = 0;
        if (request.Header("x-ms-continuation") is { Length: > 0 } continuation)
        {
            try
            {
                skip = int.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(continuation)), NumberStyles.None, CultureInfo.InvariantCulture);
            }
            catch (FormatException)
            {
                throw HubError.BadRequest("The continuation token is not valid.");
            }
        }

        var pageSize = DefaultPageSize;
        if (request.Header("x-ms-max-item-count") is { } max && (!int.TryParse(max, NumberStyles.None, CultureInfo.InvariantCulture, out pageSize) || pageSize is < 1 or > 1000))
        {
            throw HubError.BadRequest("x-ms-max-item-count must be between 1 and 1000.");
        }

        var (page, more) = hub.QueryTwins(skip, pageSize);
        var response = HttpResponse.Json(200, page);
        response.Headers["x-ms-item-type"] = "Twin";
        if (more)
        {
            response.Headers["x-ms-continuation"] = Convert.ToBase64String(Encoding.UTF8.GetBytes((skip + pageSize).ToString(CultureInfo.InvariantCulture)));
        }

        return response;
    }

    private async Task<HttpResponse> InvokeMethodAsync(string deviceId, JsonObject body, CancellationToken cancellationToken)
    {
        var name = body["methodName"]?.GetValue<string>();
        if (string.IsNullOrEmpty(name) || name.Contains('/', StringComparison.Ordinal) || name.Contains('?', StringComparison.Ordinal))
        {
            throw HubError.BadRequest("methodName is required and may not contain '/' or '?'.");
        }

        var responseTimeout = IntField(body, "responseTimeoutInSeconds", 30, 5, 300);
        var connectTimeout = IntField(body, "connectTimeoutInSeconds", 0, 0, 300);
        var payload = body["payload"] is { } p ? Encoding.UTF8.GetBytes(p.ToJsonString()) : "null"u8.ToArray();
        var result = await devices.InvokeMethodAsync(deviceId, name, payload, TimeSpan.FromSeconds(responseTimeout), TimeSpan.FromSeconds(connectTimeout), cancellationToken).ConfigureAwait(false);
        return HttpResponse.Json(200, new JsonObject { ["status"] = result.Status, ["payload"] = result.PayloadJson() });
    }

    private HttpResponse SendCloudToDevice(string deviceId, HttpRequest request)
    {
        var properties = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in request.Headers)
        {
            if (name.StartsWith("iothub-app-", StringComparison.OrdinalIgnoreCase))
            {
                properties[name["iothub-app-".Length..]] = value;
            }
        }

        DateTime? expiry = null;
        if (request.Header("iothub-expiry") is { } expiryText)
        {
            if (!DateTime.TryParse(expiryText, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var parsed))
            {
                throw HubError.BadRequest("iothub-expiry must be an ISO 8601 UTC time.");
            }

            expiry = parsed;
        }

        var message = hub.EnqueueCloudToDevice(deviceId, request.Body, properties, request.Header("iothub-messageid"), request.Header("iothub-correlationid"),
            request.Header("iothub-userid"), request.Header("Content-Type"), request.Header("Content-Encoding"), request.Header("iothub-ack"), expiry);
        return HttpResponse.Json(200, new JsonObject { ["messageId"] = message.MessageId, ["queued"] = hub.QueuedCount(deviceId) });
    }

    private async Task<HttpResponse> ReadTelemetryAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var from = request.Query.TryGetValue("from", out var fromText) && long.TryParse(fromText, NumberStyles.None, CultureInfo.InvariantCulture, out var f) ? f : 0;
        if (request.Query.TryGetValue("from", out var fromSpecial) && fromSpecial == "end")
        {
            from = hub.Telemetry.NextSequenceNumber;
        }

        var max = IntQuery(request, "max", 100, 1, 1000);
        var wait = IntQuery(request, "timeout", 0, 0, 60);
        request.Query.TryGetValue("deviceId", out var deviceId);
        var messages = await hub.Telemetry.ReadAsync(from, max, string.IsNullOrEmpty(deviceId) ? null : deviceId, TimeSpan.FromSeconds(wait), cancellationToken).ConfigureAwait(false);
        var next = messages.Count > 0 ? messages[^1].SequenceNumber + 1 : Math.Max(from, 1);
        var array = new JsonArray(messages.Select(m => (JsonNode)new JsonObject
        {
            ["sequenceNumber"] = m.SequenceNumber,
            ["deviceId"] = m.DeviceId,
            ["moduleId"] = m.ModuleId,
            ["enqueuedTimeUtc"] = m.EnqueuedTimeUtc.ToString("O", CultureInfo.InvariantCulture),
            ["body"] = Convert.ToBase64String(m.Body),
            ["properties"] = new JsonObject(m.Properties.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
            ["systemProperties"] = new JsonObject(m.SystemProperties.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        }).ToArray());
        return HttpResponse.Json(200, new JsonObject { ["messages"] = array, ["next"] = next });
    }

    private HttpResponse ReadFeedback(HttpRequest request)
    {
        // Each record is delivered once, as the hub's feedback queue completes what a reader took.
        var from = request.Query.TryGetValue("from", out var fromText) && long.TryParse(fromText, NumberStyles.None, CultureInfo.InvariantCulture, out var f) ? f : 1;
        var records = hub.TakeFeedbackAsync(IntQuery(request, "max", 100, 1, 1000), TimeSpan.Zero).GetAwaiter().GetResult();
        var array = new JsonArray(records.Select(r => (JsonNode)new JsonObject
        {
            ["sequenceNumber"] = r.SequenceNumber,
            ["originalMessageId"] = r.OriginalMessageId,
            ["deviceId"] = r.DeviceId,
            ["statusCode"] = r.StatusCode,
            ["enqueuedTimeUtc"] = r.EnqueuedTimeUtc.ToString("O", CultureInfo.InvariantCulture),
        }).ToArray());
        return HttpResponse.Json(200, new JsonObject { ["feedback"] = array, ["next"] = records.Count > 0 ? records[^1].SequenceNumber + 1 : from });
    }

    private static HttpResponse WithETag(HttpResponse response)
    {
        var etag = JsonNode.Parse(response.Body)?["etag"]?.GetValue<string>();
        if (etag is not null)
        {
            response.Headers["ETag"] = $"\"{etag}\"";
        }

        return response;
    }

    private static JsonObject BodyObject(HttpRequest request) =>
        TwinDocument.ParseStrict(request.Body.Length == 0 ? "{}"u8 : request.Body, "The body") as JsonObject ?? throw HubError.BadRequest("The body must be a JSON object.");

    private static int IntQuery(HttpRequest request, string name, int fallback, int min, int max)
    {
        if (!request.Query.TryGetValue(name, out var text))
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw HubError.BadRequest($"{name} must be a number from {min} to {max}.");
    }

    private static int IntField(JsonObject body, string name, int fallback, int min, int max)
    {
        var node = body[name];
        if (node is null)
        {
            return fallback;
        }

        try
        {
            var value = node.GetValue<int>();
            return value >= min && value <= max ? value : throw HubError.BadRequest($"{name} must be from {min} to {max}.");
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException)
        {
            throw HubError.BadRequest($"{name} must be a number.");
        }
    }

    [GeneratedRegex(@"^\s*SELECT\s+\*\s+FROM\s+devices\s*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SelectAllDevices();
}

/// <summary>A token bucket on the hub's clock: <c>rate</c> requests a second with bursts of the same size; 0 = unlimited.</summary>
internal sealed class RateLimiter(int rate, TimeProvider time)
{
    private readonly object gate = new();
    private double tokens = rate;
    private long last = time.GetTimestamp();

    public bool TryAcquire(out int retryAfterSeconds)
    {
        retryAfterSeconds = 0;
        if (rate <= 0)
        {
            return true;
        }

        lock (gate)
        {
            var now = time.GetTimestamp();
            tokens = Math.Min(rate, tokens + (time.GetElapsedTime(last, now).TotalSeconds * rate));
            last = now;
            if (tokens >= 1)
            {
                tokens -= 1;
                return true;
            }
        }

        retryAfterSeconds = 1;
        return false;
    }
}
