using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubDevice.Logic.Device;
using IoTHubMqtt.FirmwareDevice;
using IoTHubMqtt.Testing;
using CoreConfig = IoTHubMqtt.Core.NanoFramework.DeviceConfiguration;
using CoreFormat = IoTHubMqtt.Core.NanoFramework.DeviceConfigurationFormat;

namespace IoTHubMqtt.Firmware.Tests.Emulator;

/// <summary>
/// The firmware's logic as a device against the in-process IoT Hub emulator, on the same wire (MQTT 3.1.1 over TLS, SAS)
/// as the module's device cmdlets; the configuration goes through the littlefs image of the config partition, as on a board.
/// Everything the test checks it checks through the service side: the registry, twins, methods, C2D and telemetry.
/// </summary>
public sealed class FirmwareOnEmulatorTests : IClassFixture<EmulatorFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly EmulatorFixture hub;

    public FirmwareOnEmulatorTests(EmulatorFixture hub) => this.hub = hub;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static SimulatedDevice StartDevice(IoTHubMqtt.Emulator.IoTHubEmulator emulator, string deviceId, string key, int telemetryInterval = 60, int? port = null)
    {
        var partition = CoreFormat.BuildConfigPartition(new CoreConfig
        {
            WifiSsid = "lab",
            WifiPassword = "correct horse",
            ConnectionString = $"HostName={emulator.HostName};DeviceId={deviceId};SharedAccessKey={key}",
            CaCertificatePem = File.ReadAllText(emulator.CaCertificatePath),
            Port = port ?? emulator.MqttTlsPort,
            TelemetryIntervalSeconds = telemetryInterval,
        }, 0x40000);
        return SimulatedDevice.StartFromConfigPartition(partition, "2.4.6");
    }

    private static async Task<T> EventuallyAsync<T>(Func<Task<T?>> probe, string what)
        where T : class
    {
        var deadline = DateTime.UtcNow + Wait;
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < deadline, "Timed out waiting for " + what + ".");
            await Task.Delay(100, Token);
        }
    }

    private static void Eventually(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "Timed out waiting for " + what + ".");
            Thread.Sleep(50);
        }
    }

    private static async Task<JsonObject> TwinAsync(ServiceRestClient service, string deviceId)
    {
        var response = await service.SendAsync(HttpMethod.Get, $"twins/{deviceId}", cancellationToken: Token);
        Assert.Equal(HttpStatusCode.OK, response.Status);
        return response.Json!.AsObject();
    }

    private static async Task<List<(DateTime Enqueued, JsonObject Body)>> TelemetryAsync(ServiceRestClient service, string deviceId, int timeoutSeconds = 0)
    {
        var response = await service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={deviceId}&from=0&max=1000&timeout={timeoutSeconds}", cancellationToken: Token);
        Assert.Equal(HttpStatusCode.OK, response.Status);
        return response.Json!["messages"]!.AsArray()
            .Select(m => (DateTime.Parse(m!["enqueuedTimeUtc"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal),
                JsonNode.Parse(Convert.FromBase64String(m["body"]!.GetValue<string>()))!.AsObject()))
            .ToList();
    }

    private static async Task<JsonObject> InvokeAsync(ServiceRestClient service, string deviceId, string method, JsonNode? payload)
    {
        var response = await service.SendAsync(HttpMethod.Post, $"twins/{deviceId}/methods",
            new JsonObject { ["methodName"] = method, ["payload"] = payload, ["responseTimeoutInSeconds"] = 15 }, cancellationToken: Token);
        Assert.Equal(HttpStatusCode.OK, response.Status);
        return response.Json!.AsObject();
    }

    private static void AssertHealthy(SimulatedDevice device)
    {
        Assert.Null(device.Fault);
        Assert.DoesNotContain(device.Log.Lines, l => l.Contains("SharedAccessKey", StringComparison.Ordinal) || l.Contains("sig=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Device_ConnectsWithSas_ReportsItselfInTheTwin_AndSendsTelemetryOnSchedule()
    {
        var (id, key) = hub.CreateDevice("fw");
        using var device = StartDevice(hub.Emulator, id, key, telemetryInterval: 1);

        Assert.True(device.WaitConnected(Wait), "The device did not connect: " + string.Join(" | ", device.Log.Lines));
        var registry = await hub.Service.SendAsync(HttpMethod.Get, $"devices/{id}", cancellationToken: Token);
        Assert.Equal("Connected", registry.Json!["connectionState"]!.GetValue<string>());

        var reported = await EventuallyAsync(async () =>
        {
            var twin = await TwinAsync(hub.Service, id);
            var r = twin["properties"]!["reported"]!.AsObject();
            return r.ContainsKey("firmwareVersion") ? r : null;
        }, "the reported properties");
        Assert.Equal("2.4.6", reported["firmwareVersion"]!.GetValue<string>());
        Assert.Equal(device.Board.ResetReason, reported["resetReason"]!.GetValue<string>());
        Assert.Equal(device.Board.Rssi, reported["rssi"]!.GetValue<int>());
        Assert.InRange(reported["uptime"]!.GetValue<long>(), 0, 60);
        Assert.Equal(1, reported["telemetryInterval"]!.GetValue<int>());

        var telemetry = await EventuallyAsync(async () =>
        {
            var messages = await TelemetryAsync(hub.Service, id, timeoutSeconds: 2);
            return messages.Count >= 3 ? messages : null;
        }, "three telemetry messages");
        Assert.All(telemetry, m => Assert.True(m.Body.ContainsKey("uptime"), m.Body.ToJsonString()));
        AssertHealthy(device);
    }

    [Fact]
    public async Task DesiredTelemetryInterval_FromTheService_ChangesTheScheduleAndIsReported()
    {
        var (id, key) = hub.CreateDevice("fw");
        using var device = StartDevice(hub.Emulator, id, key, telemetryInterval: 3600);
        Assert.True(device.WaitConnected(Wait));
        await EventuallyAsync(async () => (await TelemetryAsync(hub.Service, id)).Count >= 1 ? new object() : null, "the first telemetry message");
        await Task.Delay(1500, Token);
        Assert.Single(await TelemetryAsync(hub.Service, id)); // hourly: nothing more for now

        var patch = await hub.Service.SendAsync(HttpMethod.Patch, $"twins/{id}",
            new JsonObject { ["properties"] = new JsonObject { ["desired"] = new JsonObject { ["telemetryInterval"] = 1 } } }, cancellationToken: Token);
        Assert.Equal(HttpStatusCode.OK, patch.Status);

        Eventually(() => device.App.TelemetryIntervalSeconds == 1, "the desired interval to apply");
        await EventuallyAsync(async () =>
        {
            var r = (await TwinAsync(hub.Service, id))["properties"]!["reported"]!;
            return r["telemetryInterval"]?.GetValue<int>() == 1 ? r : null;
        }, "telemetryInterval 1 in the reported properties");
        await EventuallyAsync(async () => (await TelemetryAsync(hub.Service, id, timeoutSeconds: 2)).Count >= 4 ? new object() : null, "telemetry every second");
        AssertHealthy(device);
    }

    [Fact]
    public async Task Methods_RebootBlinkSetInterval_AreAnsweredThroughTheService()
    {
        var (id, key) = hub.CreateDevice("fw");
        using var device = StartDevice(hub.Emulator, id, key);
        Assert.True(device.WaitConnected(Wait));

        var blink = await InvokeAsync(hub.Service, id, "blink", new JsonObject { ["count"] = 3 });
        Assert.Equal(200, blink["status"]!.GetValue<int>());
        Assert.Equal(3, blink["payload"]!["blinked"]!.GetValue<int>());
        Assert.Equal([3], device.Board.Blinks.ToArray());

        var badBlink = await InvokeAsync(hub.Service, id, "blink", new JsonObject { ["count"] = 0 });
        Assert.Equal(400, badBlink["status"]!.GetValue<int>());

        var setInterval = await InvokeAsync(hub.Service, id, "setInterval", new JsonObject { ["seconds"] = 17 });
        Assert.Equal(200, setInterval["status"]!.GetValue<int>());
        Assert.Equal(17, setInterval["payload"]!["telemetryInterval"]!.GetValue<int>());
        await EventuallyAsync(async () =>
        {
            var r = (await TwinAsync(hub.Service, id))["properties"]!["reported"]!;
            return r["telemetryInterval"]?.GetValue<int>() == 17 ? r : null;
        }, "telemetryInterval 17 reported");

        var unknown = await InvokeAsync(hub.Service, id, "selfDestruct", new JsonObject());
        Assert.Equal(404, unknown["status"]!.GetValue<int>());

        var reboot = await InvokeAsync(hub.Service, id, "reboot", new JsonObject { ["delaySeconds"] = 1 });
        Assert.Equal(200, reboot["status"]!.GetValue<int>());
        Eventually(() => device.Board.Reboots == 1, "the board to be restarted");
        AssertHealthy(device);
    }

    [Fact]
    public async Task CloudToDeviceMessage_SentByTheService_ReachesTheApp()
    {
        var (id, key) = hub.CreateDevice("fw");
        using var device = StartDevice(hub.Emulator, id, key);
        Assert.True(device.WaitConnected(Wait));

        var sent = await hub.Service.SendAsync(HttpMethod.Post, $"$emulator/devices/{id}/messages/devicebound", rawBody: Encoding.UTF8.GetBytes("led=on"),
            headers: new Dictionary<string, string> { ["iothub-app-color"] = "green" }, cancellationToken: Token);
        Assert.Equal(HttpStatusCode.OK, sent.Status);

        Eventually(() => !device.CloudMessages.IsEmpty, "the C2D message");
        Assert.Equal("led=on", Encoding.UTF8.GetString(Assert.Single(device.CloudMessages)));
        Assert.Equal(1, device.App.CloudMessagesReceived);

        AssertHealthy(device);
    }

    [Fact]
    public async Task TokenRenewal_After85PercentOfTheLifetime_ReconnectsWithANewToken()
    {
        var (id, key) = hub.CreateDevice("fw");
        using var device = StartDevice(hub.Emulator, id, key);
        Assert.True(device.WaitConnected(Wait));
        var firstExpiry = device.App.TokenExpiry;
        Assert.Equal(1, device.App.ConnectCount);

        device.Clock.Advance(TimeSpan.FromHours(20.5)); // past 85 % of 24 h

        Eventually(() => device.App.ConnectCount == 2 && device.App.State == DeviceState.Connected, "the renewal reconnect");
        Assert.InRange(device.App.TokenExpiry - firstExpiry, (long)TimeSpan.FromHours(20.5).TotalSeconds, (long)TimeSpan.FromHours(20.5).TotalSeconds + 60);

        // The hub took the new token: the device still answers methods.
        var blink = await InvokeAsync(hub.Service, id, "blink", new JsonObject { ["count"] = 1 });
        Assert.Equal(200, blink["status"]!.GetValue<int>());
        AssertHealthy(device);
    }

    [Fact]
    public async Task WrongKey_IsRefusedByTheHub_AndTheDeviceBacksOff()
    {
        var (id, _) = hub.CreateDevice("fw");
        using var device = StartDevice(hub.Emulator, id, Convert.ToBase64String(new byte[32]));

        Eventually(() => device.App.ConsecutiveFailures >= 1, "a refused connect");
        Assert.NotEqual(DeviceState.Connected, device.App.State);
        Assert.True(device.App.NextAttemptAt > 0);
        var registry = await hub.Service.SendAsync(HttpMethod.Get, $"devices/{id}", cancellationToken: Token);
        Assert.Equal("Disconnected", registry.Json!["connectionState"]!.GetValue<string>());
        AssertHealthy(device);
    }

    [Fact]
    public async Task BrokerRestart_TheDeviceReconnectsAndGoesOn()
    {
        var dataPath = Directory.CreateTempSubdirectory("fw-restart-").FullName;
        try
        {
            string id;
            string key;
            int port;
            SimulatedDevice device;
            await using (var first = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }))
            {
                (id, key) = first.CreateDevice("fw");
                port = first.Emulator.MqttTlsPort;
                device = StartDevice(first.Emulator, id, key);
                Assert.True(device.WaitConnected(Wait));
            }

            using (device)
            {
                Eventually(() => device.App.State != DeviceState.Connected, "the device to notice the lost connection");

                await using var second = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; o.MqttTlsPort = port; });
                Eventually(() => device.App.State == DeviceState.Connected && device.App.ConnectCount >= 2, "the reconnect: " + string.Join(" | ", device.Log.Lines));

                var blink = await InvokeAsync(second.Service, id, "blink", new JsonObject { ["count"] = 2 });
                Assert.Equal(200, blink["status"]!.GetValue<int>());
                var registry = await second.Service.SendAsync(HttpMethod.Get, $"devices/{id}", cancellationToken: Token);
                Assert.Equal("Connected", registry.Json!["connectionState"]!.GetValue<string>());
                AssertHealthy(device);
            }
        }
        finally
        {
            try
            {
                Directory.Delete(dataPath, recursive: true);
            }
            catch (IOException)
            {
                // SQLite may still hold the file for a moment; the temp directory is cleaned by the OS.
            }
        }
    }
}
