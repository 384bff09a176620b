using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;

namespace IoTHubMqtt.Module.Tests.Harness;

/// <summary>
/// The service side of an emulator started inside the engine, played by the test over the emulator's HTTPS REST API
/// with its own HttpClient and SAS code, so this test project never loads the module's assemblies itself.
/// </summary>
public sealed class HubService : IDisposable
{
    private readonly HttpClient http;
    private readonly string hostName;
    private readonly string policy;
    private readonly byte[] key;

    public HubService(int httpsPort, string caCertificatePath, string ownerConnectionString)
    {
        var fields = ownerConnectionString.Split(';').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        hostName = fields["HostName"];
        policy = fields["SharedAccessKeyName"];
        key = Convert.FromBase64String(fields["SharedAccessKey"]);
        var ca = X509Certificate2.CreateFromPem(File.ReadAllText(caCertificatePath));
        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, _, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.CustomTrustStore.Add(ca);
                return certificate is not null && chain.Build(certificate);
            },
        };
        http = new HttpClient(handler) { BaseAddress = new Uri($"https://localhost:{httpsPort}/"), Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>Reads HttpsPort, CaCertificatePath and OwnerConnectionString of the emulator object in <paramref name="variable"/>.</summary>
    public static HubService For(PowerShellSession ps, string variable = "hub")
    {
        var e = ps.Invoke($"${variable}.HttpsPort; ${variable}.CaCertificatePath; ${variable}.OwnerConnectionString").Output;
        return new HubService((int)e[0].BaseObject, (string)e[1].BaseObject, (string)e[2].BaseObject);
    }

    private string Token()
    {
        var expiry = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var resource = WebUtility.UrlEncode(hostName);
        using var hmac = new HMACSHA256(key);
        var sig = Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(resource + "\n" + expiry)));
        return $"SharedAccessSignature sr={resource}&sig={WebUtility.UrlEncode(sig)}&se={expiry}&skn={policy}";
    }

    public async Task<(HttpStatusCode Status, JsonNode? Json)> SendAsync(HttpMethod method, string path, HttpContent? content = null, IDictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(method, path + (path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "api-version=2021-04-12") { Content = content };
        request.Headers.TryAddWithoutValidation("Authorization", Token());
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, body.Length == 0 ? null : JsonNode.Parse(body));
    }

    public async Task SendCloudToDeviceAsync(string deviceId, string body, string messageId, IDictionary<string, string>? properties = null)
    {
        var headers = new Dictionary<string, string> { ["iothub-messageid"] = messageId };
        foreach (var (name, value) in properties ?? new Dictionary<string, string>())
        {
            headers["iothub-app-" + name] = value;
        }

        var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
        var (status, _) = await SendAsync(HttpMethod.Post, $"$emulator/devices/{deviceId}/messages/devicebound", content, headers);
        Assert.Equal(HttpStatusCode.OK, status);
    }

    public async Task<JsonNode> InvokeMethodAsync(string deviceId, string method, JsonNode? payload, int timeoutSeconds = 20)
    {
        var body = new JsonObject { ["methodName"] = method, ["payload"] = payload, ["responseTimeoutInSeconds"] = timeoutSeconds };
        var (status, json) = await SendAsync(HttpMethod.Post, $"twins/{deviceId}/methods", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.True(status == HttpStatusCode.OK, $"method call answered {status}: {json}");
        return json!;
    }

    public async Task PatchDesiredAsync(string deviceId, JsonObject desired)
    {
        var body = new JsonObject { ["properties"] = new JsonObject { ["desired"] = desired } };
        var (status, _) = await SendAsync(HttpMethod.Patch, $"twins/{deviceId}", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, status);
    }

    public async Task<List<string>> TelemetryBodiesAsync(string deviceId, int atLeast, TimeSpan within)
    {
        var bodies = new List<string>();
        long from = 0;
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline && bodies.Count < atLeast)
        {
            var (_, json) = await SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={deviceId}&from={from}&max=1000&timeout=1");
            foreach (var item in json!["messages"]!.AsArray())
            {
                bodies.Add(Encoding.UTF8.GetString(Convert.FromBase64String(item!["body"]!.GetValue<string>())));
            }

            from = json["next"]!.GetValue<long>();
        }

        return bodies;
    }

    public void Dispose() => http.Dispose();
}
