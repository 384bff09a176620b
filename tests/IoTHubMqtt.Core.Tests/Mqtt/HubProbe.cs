using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Diagnostics;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>The service side of the emulator, over its REST API, for device-client tests.</summary>
internal static class HubProbe
{
    public static IoTHubDeviceClient NewClient(IoTHubMqtt.Emulator.IoTHubEmulator emulator, string deviceId, string key, Func<IoTHubDeviceClientOptions, IoTHubDeviceClientOptions>? configure = null, IIoTHubLogger? log = null)
    {
        var options = new IoTHubDeviceClientOptions
        {
            HostName = emulator.HostName,
            DeviceId = deviceId,
            SharedAccessKey = key,
            Port = emulator.MqttTlsPort,
            CaCertificatePath = emulator.CaCertificatePath,
            OperationTimeout = TimeSpan.FromSeconds(10),
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(200),
            ReconnectMaxDelay = TimeSpan.FromSeconds(2),
            Logger = log ?? IoTHubNullLogger.Instance,
        };
        return new IoTHubDeviceClient(configure is null ? options : configure(options));
    }

    /// <summary>Reads the telemetry the hub accepted from one device until <paramref name="atLeast"/> arrived or the time is up.</summary>
    public static async Task<List<JsonObject>> TelemetryAsync(ServiceRestClient service, string deviceId, int atLeast, TimeSpan within)
    {
        var messages = new List<JsonObject>();
        long from = 0;
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline)
        {
            var response = await service.SendAsync(HttpMethod.Get, $"/$emulator/messages/events?deviceId={Uri.EscapeDataString(deviceId)}&from={from}&max=1000&timeout=1");
            Assert.Equal(HttpStatusCode.OK, response.Status);
            foreach (var item in response.Json!["messages"]!.AsArray())
            {
                messages.Add(item!.AsObject());
            }

            from = response.Json["next"]!.GetValue<long>();
            if (messages.Count >= atLeast)
            {
                break;
            }
        }

        return messages;
    }

    public static string Body(JsonObject message) => Encoding.UTF8.GetString(Convert.FromBase64String(message["body"]!.GetValue<string>()));

    public static async Task SendCloudToDeviceAsync(ServiceRestClient service, string deviceId, string body, string? messageId = null, IDictionary<string, string>? properties = null)
    {
        var headers = new Dictionary<string, string> { ["Content-Type"] = "text/plain" };
        if (messageId is not null)
        {
            headers["iothub-messageid"] = messageId;
        }

        foreach (var (name, value) in properties ?? new Dictionary<string, string>())
        {
            headers["iothub-app-" + name] = value;
        }

        var response = await service.SendAsync(HttpMethod.Post, $"/$emulator/devices/{Uri.EscapeDataString(deviceId)}/messages/devicebound", headers: headers, rawBody: Encoding.UTF8.GetBytes(body));
        Assert.Equal(HttpStatusCode.OK, response.Status);
    }

    public static Task<ServiceResponse> InvokeMethodAsync(ServiceRestClient service, string deviceId, string method, JsonNode? payload, int timeoutSeconds = 10) =>
        service.SendAsync(HttpMethod.Post, $"/twins/{Uri.EscapeDataString(deviceId)}/methods", new JsonObject
        {
            ["methodName"] = method,
            ["payload"] = payload?.DeepClone(),
            ["responseTimeoutInSeconds"] = timeoutSeconds,
        });

    public static async Task PatchDesiredAsync(ServiceRestClient service, string deviceId, JsonObject desired)
    {
        var response = await service.SendAsync(HttpMethod.Patch, $"/twins/{Uri.EscapeDataString(deviceId)}", new JsonObject { ["properties"] = new JsonObject { ["desired"] = desired } });
        Assert.Equal(HttpStatusCode.OK, response.Status);
    }
}
