using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;

namespace IoTHubMqtt.Core.Service;

/// <summary>
/// The hub's service REST API (api-version 2021-04-12) over HttpClient: registry, twins, direct methods and device
/// query, authenticated with policy SAS tokens that are signed again before they expire. Throttling (429, honouring
/// Retry-After), 5xx answers and transient network faults are retried with backoff; every other failure is an
/// <see cref="IoTHubMqttException"/> carrying the hub's error code. Thread-safe: one client serves parallel calls.
/// See https://learn.microsoft.com/rest/api/iothub/service/devices
/// </summary>
public sealed partial class IoTHubServiceClient : IDisposable
{
    public const string ApiVersion = "2021-04-12";

    private static readonly string[] AzureHubSuffixes = [".azure-devices.net", ".azure-devices.cn", ".azure-devices.us", ".azure-devices.de", ".azure-devices-int.net"];
    private readonly IoTHubServiceOptions options;
    private readonly IoTHubConnectionString policy;
    private readonly HttpClient http;
    private readonly Uri baseUri;
    private readonly TlsTrust tlsTrust;
    private readonly object tokenGate = new();
    private string? token;
    private DateTimeOffset renewAt;
    private int tokenRenewals;
    private int retries;
    private int throttledAnswers;
    private int requestsInFlight;
    private bool disposed;

    /// <summary>Without a Retry-After, throttled requests back off up to this long between tries.</summary>
    private static readonly TimeSpan ThrottleBackoffCap = TimeSpan.FromSeconds(30);

    public IoTHubServiceClient(IoTHubServiceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        policy = options.ParsePolicy();
        var trust = tlsTrust = new TlsTrust(options.CaCertificatePath, options.UseSystemTrustStore);
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = Math.Max(1, options.MaxConnections),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectTimeout = TimeSpan.FromSeconds(15),
            SslOptions = { RemoteCertificateValidationCallback = (_, certificate, chain, errors) => trust.Validate(certificate, chain, errors) },
        };
        http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        Port = options.Port ?? 443;
        Throttles = new ThrottleGates(options.TimeProvider);
        baseUri = new Uri($"https://{policy.HostName}:{Port.ToString(CultureInfo.InvariantCulture)}/");
    }

    public string HostName => policy.HostName;

    public int Port { get; }

    public string PolicyName => policy.SharedAccessKeyName ?? "";

    /// <summary>True when made for this module's emulator.</summary>
    public bool IsEmulator => options.IsEmulator;

    /// <summary>When the current policy token expires (null before the first request).</summary>
    public DateTimeOffset? TokenExpiresAt { get; private set; }

    public int TokenRenewalCount => Volatile.Read(ref tokenRenewals);

    /// <summary>Requests retried after throttling, a 5xx answer or a network fault.</summary>
    public int RetryCount => Volatile.Read(ref retries);

    /// <summary>Requests sent and not yet answered (a throttled one counts until its gate is closed).</summary>
    internal int RequestsInFlight => Volatile.Read(ref requestsInFlight);

    /// <summary>429 answers the hub gave (each was waited out and retried, or ended the request with IoTHubThrottled).</summary>
    public int ThrottledCount => Volatile.Read(ref throttledAnswers);

    /// <summary>The per-operation-class waits the hub's 429 answers imposed (registry, twins, methods, queries, jobs).</summary>
    internal ThrottleGates Throttles { get; }

    /// <summary>Until when the hub throttles registry operations (creating, reading, updating, removing devices), or null.</summary>
    public DateTimeOffset? RegistryThrottledUntil => Throttles.Registry.ClosedUntil;

    /// <summary>The clock of this client (tokens, retries, throttling waits).</summary>
    public TimeProvider TimeProvider => options.TimeProvider;

    #region Registry

    public async Task<ServiceDevice> CreateDeviceAsync(DeviceSpec spec, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        IdentityValidator.ThrowIfInvalidDeviceId(spec.DeviceId);
        var response = await SendAsync(HttpMethod.Put, DevicePath(spec.DeviceId), spec.ToJson(null), null, "Create device", spec.DeviceId, cancellationToken).ConfigureAwait(false);
        return ServiceDevice.FromJson(ObjectOf(response), HostName);
    }

    /// <summary>Replaces a device's identity; <paramref name="etag"/> null means unconditionally (<c>If-Match: *</c>).</summary>
    public async Task<ServiceDevice> UpdateDeviceAsync(DeviceSpec spec, string? etag, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        IdentityValidator.ThrowIfInvalidDeviceId(spec.DeviceId);
        var response = await SendAsync(HttpMethod.Put, DevicePath(spec.DeviceId), spec.ToJson(etag), IfMatch(etag), "Update device", spec.DeviceId, cancellationToken).ConfigureAwait(false);
        return ServiceDevice.FromJson(ObjectOf(response), HostName);
    }

    public async Task<ServiceDevice> GetDeviceAsync(string deviceId, CancellationToken cancellationToken = default)
    {
        IdentityValidator.ThrowIfInvalidDeviceId(deviceId);
        var response = await SendAsync(HttpMethod.Get, DevicePath(deviceId), null, null, "Get device", deviceId, cancellationToken).ConfigureAwait(false);
        return ServiceDevice.FromJson(ObjectOf(response), HostName);
    }

    /// <summary>Deletes a device; with an <paramref name="etag"/> only if it has not changed since (else PreconditionFailed).</summary>
    public async Task DeleteDeviceAsync(string deviceId, string? etag, CancellationToken cancellationToken = default)
    {
        IdentityValidator.ThrowIfInvalidDeviceId(deviceId);
        await SendAsync(HttpMethod.Delete, DevicePath(deviceId), null, IfMatch(etag), "Remove device", deviceId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One page of <c>SELECT * FROM devices</c>; pass the returned continuation to get the next.</summary>
    public async Task<DeviceQueryPage> QueryDevicesAsync(string? continuation, int pageSize = 100, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(pageSize, 1000);
        var headers = new Dictionary<string, string> { ["x-ms-max-item-count"] = pageSize.ToString(CultureInfo.InvariantCulture) };
        if (continuation is not null)
        {
            headers["x-ms-continuation"] = continuation;
        }

        var response = await SendAsync(HttpMethod.Post, "devices/query", new JsonObject { ["query"] = "SELECT * FROM devices" }, headers, "Query devices", null, cancellationToken).ConfigureAwait(false);
        var items = JsonNode.Parse(response.Body) as JsonArray ?? throw Unexpected("Query devices", "a JSON array");
        var devices = items.OfType<JsonObject>().Select(twin =>
        {
            var device = ServiceDevice.FromJson(twin, HostName);
            return ServiceDevice.Text(twin, "deviceEtag") is { } deviceEtag ? WithETag(device, deviceEtag) : device;
        }).ToList();
        return new DeviceQueryPage(devices, response.Header("x-ms-continuation"));
    }

    /// <summary>Every device, page by page, following continuation tokens.</summary>
    public async IAsyncEnumerable<ServiceDevice> QueryAllDevicesAsync(int pageSize = 100, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? continuation = null;
        do
        {
            var page = await QueryDevicesAsync(continuation, pageSize, cancellationToken).ConfigureAwait(false);
            foreach (var device in page.Devices)
            {
                yield return device;
            }

            continuation = page.Continuation;
        }
        while (continuation is not null);
    }

    #endregion

    #region Twins and methods

    public async Task<ServiceTwin> GetTwinAsync(string deviceId, CancellationToken cancellationToken = default)
    {
        IdentityValidator.ThrowIfInvalidDeviceId(deviceId);
        var response = await SendAsync(HttpMethod.Get, TwinPath(deviceId), null, null, "Get twin", deviceId, cancellationToken).ConfigureAwait(false);
        return ToTwin(ObjectOf(response));
    }

    /// <summary>Patches desired properties (null deletes one); with an <paramref name="etag"/> only if the twin has not changed.</summary>
    public async Task<ServiceTwin> UpdateDesiredPropertiesAsync(string deviceId, JsonObject desired, string? etag, CancellationToken cancellationToken = default)
    {
        IdentityValidator.ThrowIfInvalidDeviceId(deviceId);
        ArgumentNullException.ThrowIfNull(desired);
        var body = new JsonObject { ["properties"] = new JsonObject { ["desired"] = desired.DeepClone() } };
        var headers = etag is null ? null : IfMatch(etag);
        var response = await SendAsync(HttpMethod.Patch, TwinPath(deviceId), body, headers, "Update desired properties", deviceId, cancellationToken).ConfigureAwait(false);
        return ToTwin(ObjectOf(response));
    }

    /// <summary>Merges <paramref name="tags"/> into the twin's tags (null deletes a tag); with an <paramref name="etag"/> only if the twin has not changed.</summary>
    public async Task<ServiceTwin> UpdateTagsAsync(string deviceId, JsonObject tags, string? etag, CancellationToken cancellationToken = default)
    {
        IdentityValidator.ThrowIfInvalidDeviceId(deviceId);
        ArgumentNullException.ThrowIfNull(tags);
        var body = new JsonObject { ["tags"] = tags.DeepClone() };
        var response = await SendAsync(HttpMethod.Patch, TwinPath(deviceId), body, etag is null ? null : IfMatch(etag), "Update tags", deviceId, cancellationToken).ConfigureAwait(false);
        return ToTwin(ObjectOf(response));
    }

    /// <summary>
    /// Calls a direct method and returns the device's status and payload. A device that is not connected is
    /// DeviceNotOnline (after <paramref name="connectTimeout"/>); one that does not answer in time is MethodTimedOut.
    /// </summary>
    public async Task<MethodInvocationResult> InvokeMethodAsync(string deviceId, string methodName, JsonNode? payload, TimeSpan responseTimeout, TimeSpan connectTimeout, CancellationToken cancellationToken = default)
    {
        IdentityValidator.ThrowIfInvalidDeviceId(deviceId);
        if (string.IsNullOrEmpty(methodName) || methodName.Length > 128 || methodName.Any(c => c is '/' or '?' or '#' || char.IsControl(c) || char.IsWhiteSpace(c)))
        {
            throw new IoTHubMqttException(ErrorIds.InvalidMethodName,
                $"'{methodName}' is not a valid method name: use up to 128 characters without '/', '?', '#' or spaces.", null, methodName);
        }

        var response = (int)Math.Clamp(responseTimeout.TotalSeconds, 5, 300);
        var connect = (int)Math.Clamp(connectTimeout.TotalSeconds, 0, 300);
        var body = new JsonObject
        {
            ["methodName"] = methodName,
            ["payload"] = payload?.DeepClone(),
            ["responseTimeoutInSeconds"] = response,
            ["connectTimeoutInSeconds"] = connect,
        };
        var answer = await SendAsync(HttpMethod.Post, TwinPath(deviceId) + "/methods", body, null, $"Invoke method '{methodName}'", deviceId, cancellationToken,
            extraTimeout: TimeSpan.FromSeconds(response + connect), isMethodCall: true).ConfigureAwait(false);
        var json = ObjectOf(answer);
        var status = json["status"] is JsonValue s && s.TryGetValue<int>(out var code) ? code : throw Unexpected("Invoke method", "a status");
        return new MethodInvocationResult(deviceId, methodName, status, json["payload"]?.DeepClone());
    }

    #endregion

    #region HTTP

    private sealed record ServiceResponse(HttpStatusCode Status, HttpResponseHeaders Headers, HttpContentHeaders? ContentHeaders, string Body)
    {
        public string? Header(string name) =>
            Headers.TryGetValues(name, out var values) ? values.FirstOrDefault()
            : ContentHeaders is not null && ContentHeaders.TryGetValues(name, out var content) ? content.FirstOrDefault() : null;
    }

    private async Task<ServiceResponse> SendAsync(HttpMethod method, string pathAndQuery, object? body, IReadOnlyDictionary<string, string>? headers,
        string operation, string? target, CancellationToken cancellationToken, TimeSpan? extraTimeout = null, bool isMethodCall = false)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var uri = new Uri(baseUri, pathAndQuery + (pathAndQuery.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "api-version=" + ApiVersion);
        var backoff = new Backoff(options.RetryInitialDelay, options.RetryMaxDelay);
        var throttleGate = Throttles.For(pathAndQuery);
        DateTimeOffset? throttledSince = null;
        var throttledBackoff = new Backoff(options.RetryInitialDelay, ThrottleBackoffCap);
        for (var attempt = 0; ; attempt++)
        {
            // While the hub throttles this class of operation, every request of it waits (the hub's Retry-After),
            // instead of each parallel caller meeting its own 429.
            await throttleGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref requestsInFlight);
            try
            {
                using var request = new HttpRequestMessage(method, uri);
                request.Headers.TryAddWithoutValidation("Authorization", CurrentToken());
                request.Headers.Accept.ParseAdd("application/json");
                if (body is byte[] bytes)
                {
                    request.Content = new ByteArrayContent(bytes);
                }
                else if (body is JsonNode node)
                {
                    request.Content = new StringContent(node.ToJsonString(), Encoding.UTF8, "application/json");
                }

                foreach (var (name, value) in headers ?? new Dictionary<string, string>())
                {
                    if (name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase))
                    {
                        request.Content ??= new ByteArrayContent([]);
                        request.Content.Headers.Remove(name);
                        request.Content.Headers.TryAddWithoutValidation(name, value);
                    }
                    else
                    {
                        request.Headers.TryAddWithoutValidation(name, value);
                    }
                }

                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(options.RequestTimeout + (extraTimeout ?? TimeSpan.Zero));
                HttpResponseMessage response;
                string text;
                try
                {
                    response = await http.SendAsync(request, timeout.Token).ConfigureAwait(false);
                    text = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (HttpRequestException ex) when (ex.InnerException is AuthenticationException || ex.HttpRequestError == HttpRequestError.SecureConnectionError && ex.InnerException is AuthenticationException)
                {
                    throw new IoTHubMqttException(ErrorIds.TlsAuthenticationFailed,
                        $"{operation}: the TLS connection to {HostName}:{Port} failed: {ex.InnerException?.Message}",
                        "Check the host name and the CA certificate (-CaCertificatePath for the emulator).", target ?? HostName, ex);
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException)
                {
                    // Refused or dropped connections, and answers cut off mid-body (HttpIOException).
                    var failure = new IoTHubMqttException(ErrorIds.IoTHubConnectionFailed,
                        $"{operation}: could not reach {HostName}:{Port}: {ex.Message}", "Check the host name, the port and the network.", target ?? HostName, ex);
                    if (ShouldRetry(failure, attempt, isMethodCall))
                    {
                        await RetryDelayAsync(backoff.Next(), $"{operation}: {ex.Message}", cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    throw failure;
                }
                catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    var failure = new IoTHubMqttException(ErrorIds.IoTHubRequestTimedOut,
                        $"{operation}: {HostName}:{Port} did not answer within {(options.RequestTimeout + (extraTimeout ?? TimeSpan.Zero)).TotalSeconds:0} s.", null, target ?? HostName, ex);
                    if (ShouldRetry(failure, attempt, isMethodCall))
                    {
                        await RetryDelayAsync(backoff.Next(), $"{operation}: no answer in time", cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    throw failure;
                }

                using (response)
                {
                    var status = (int)response.StatusCode;
                    if (status is >= 200 and < 300)
                    {
                        return new ServiceResponse(response.StatusCode, response.Headers, response.Content.Headers, text);
                    }

                    var errorCode = response.Headers.TryGetValues("iothub-errorcode", out var codes) ? codes.FirstOrDefault() : null;
                    if (status == 429)
                    {
                        // Throttled: wait as long as the hub says (or back off), for as long as MaxThrottledWait allows; never
                        // give up without saying so.
                        var now = options.TimeProvider.GetUtcNow();
                        throttledSince ??= now;
                        var delay = RetryAfter(response) ?? throttledBackoff.Next();
                        if (now + delay - throttledSince.Value <= options.MaxThrottledWait)
                        {
                            throttleGate.CloseFor(delay);
                            Interlocked.Increment(ref retries);
                            Interlocked.Increment(ref throttledAnswers);
                            options.Log?.Invoke($"{operation}: the hub throttled the request (429 {errorCode ?? "ThrottlingException"}); waiting {delay.TotalSeconds:0.#} s as it asked.");
                            continue;
                        }

                        throw new IoTHubMqttException(ErrorIds.IoTHubThrottled,
                            $"{operation}{(target is null ? "" : $" ({target})")}: the hub still throttled the request after {(now - throttledSince.Value).TotalSeconds:0} s of waiting (429 {errorCode ?? "ThrottlingException"}).",
                            "The hub's tier allows fewer operations than asked for: run it again later, add units, or use Import-IoTHubDevice for large fleets.", target);
                    }

                    var error = ServiceErrors.FromResponse(response.StatusCode, errorCode, text, target, operation, isMethodCall);
                    if (ShouldRetry(error, attempt, isMethodCall: false))
                    {
                        var delay = RetryAfter(response) ?? backoff.Next();
                        await RetryDelayAsync(delay, $"{operation}: {status}", cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    throw error;
                }
            }
            finally
            {
                Interlocked.Decrement(ref requestsInFlight);
            }
        }
    }

    /// <summary>
    /// A failed request is tried again when its error is transient (see <see cref="ErrorIds"/>) and retries are left. A
    /// direct method call is never sent twice over a lost connection: the device may have run it already.
    /// </summary>
    private bool ShouldRetry(IoTHubMqttException error, int attempt, bool isMethodCall) =>
        error.IsTransient && attempt < options.MaxRetries && !isMethodCall;

    private async Task RetryDelayAsync(TimeSpan delay, string why, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref retries);
        options.Log?.Invoke($"{why}; retrying in {delay.TotalMilliseconds:0} ms.");
        await Task.Delay(delay, options.TimeProvider, cancellationToken).ConfigureAwait(false);
    }

    private TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var retryAfter = response.Headers.RetryAfter;
        if (retryAfter?.Delta is { } delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta > TimeSpan.FromMinutes(2) ? TimeSpan.FromMinutes(2) : delta;
        }

        if (retryAfter?.Date is { } date)
        {
            var wait = date - options.TimeProvider.GetUtcNow();
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait > TimeSpan.FromMinutes(2) ? TimeSpan.FromMinutes(2) : wait;
        }

        return null;
    }

    /// <summary>The policy token: the one in the connection string, or one signed now and again when 15 % of its life is left.</summary>
    private string CurrentToken()
    {
        if (policy.SharedAccessSignature is { } fixedToken)
        {
            return fixedToken;
        }

        lock (tokenGate)
        {
            var now = options.TimeProvider.GetUtcNow();
            if (token is null || now >= renewAt)
            {
                var expiry = now + options.TokenTimeToLive;
                token = SasToken.Create(SasResource.ForHub(HostName), policy.SharedAccessKey!, expiry, policy.SharedAccessKeyName, now);
                renewAt = now + (options.TokenTimeToLive * 0.85);
                if (TokenExpiresAt is not null)
                {
                    tokenRenewals++;
                    options.Log?.Invoke($"Signed a new policy token for {HostName}, valid until {expiry.UtcDateTime:u}.");
                }

                TokenExpiresAt = expiry;
            }

            return token;
        }
    }

    private static Dictionary<string, string>? IfMatch(string? etag) =>
        new(StringComparer.OrdinalIgnoreCase) { ["If-Match"] = etag is null or "*" ? "*" : $"\"{etag.Trim('"')}\"" };

    private static string DevicePath(string deviceId) => "devices/" + Uri.EscapeDataString(deviceId);

    private static string TwinPath(string deviceId) => "twins/" + Uri.EscapeDataString(deviceId);

    private static JsonObject ObjectOf(ServiceResponse response)
    {
        try
        {
            return JsonNode.Parse(response.Body) as JsonObject ?? throw Unexpected("The hub", "a JSON object");
        }
        catch (JsonException ex)
        {
            throw new IoTHubMqttException(ErrorIds.IoTHubInvalidResponse, $"The hub answered with invalid JSON: {ex.Message}", null, null, ex);
        }
    }

    private static IoTHubMqttException Unexpected(string operation, string expected) =>
        new(ErrorIds.IoTHubInvalidResponse, $"{operation}: the hub's answer is not {expected}.");

    private static ServiceTwin ToTwin(JsonObject json)
    {
        var properties = json["properties"] as JsonObject;
        var desired = (properties?["desired"] as JsonObject)?.DeepClone() as JsonObject ?? [];
        var reported = (properties?["reported"] as JsonObject)?.DeepClone() as JsonObject ?? [];
        static long Version(JsonObject section) => section["$version"] is JsonValue v && v.TryGetValue<long>(out var n) ? n : 0;
        var desiredVersion = Version(desired);
        var reportedVersion = Version(reported);
        foreach (var section in new[] { desired, reported })
        {
            section.Remove("$version");
            section.Remove("$metadata");
        }

        return new ServiceTwin(ServiceDevice.Text(json, "deviceId") ?? "", ServiceDevice.Text(json, "etag"), desiredVersion, reportedVersion, desired, reported,
            (json["tags"] as JsonObject)?.DeepClone() as JsonObject);
    }

    private static ServiceDevice WithETag(ServiceDevice d, string etag) => d.WithETagAndTags(etag.Trim('"'), null);

    #endregion

    public void Dispose()
    {
        if (!disposed)
        {
            disposed = true;
            DisposeAmqp();
            http.Dispose();
        }
    }

    public override string ToString() => $"{HostName}:{Port} ({PolicyName})";
}
