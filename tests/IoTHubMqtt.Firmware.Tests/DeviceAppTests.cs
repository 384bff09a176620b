using IoTHubDevice.Logic.Configuration;
using IoTHubDevice.Logic.Device;
using IoTHubDevice.Logic.Json;
using IoTHubDevice.Logic.Platform;

namespace IoTHubMqtt.Firmware.Tests;

public sealed class DeviceAppTests
{
    private readonly ScriptedTransport transport = new();
    private readonly ManualClock clock = new();
    private readonly RecordingHardware hardware = new();
    private readonly ListLog log = new();

    private DeviceApp NewApp(string extra = "")
    {
        var config = DeviceConfiguration.FromJson("{\"wifi\":{\"ssid\":\"lab\"},\"iothub\":{\"connectionString\":\"" + ConfigurationTests.ConnectionString + "\"}" + extra + "}");
        return new DeviceApp(config, transport, new NetHmacSha256(), clock, hardware, log, "1.2.3", new Random(7));
    }

    private DeviceApp Connected(string desired = "{\"$version\":3}")
    {
        var app = NewApp();
        app.Tick();
        var rid = transport.Last("$iothub/twin/GET/").Topic.Split("$rid=")[1];
        transport.Deliver("$iothub/twin/res/200/?$rid=" + rid, "{\"desired\":" + desired + ",\"reported\":{\"$version\":1}}");
        app.Tick();
        AckReported(app);
        return app;
    }

    // The hub's answer to the last reported-properties update.
    private void AckReported(DeviceApp app)
    {
        var rid = transport.Last("$iothub/twin/PATCH/properties/reported/").Topic.Split("$rid=")[1];
        transport.Deliver("$iothub/twin/res/204/?$rid=" + rid + "&$version=2", string.Empty);
        app.Tick();
    }

    private static JsonObject Json(string text) => (JsonObject)JsonReader.Parse(text)!;

    [Fact]
    public void Tick_ClockStillInYear2000_DoesNotConnect()
    {
        clock.UnixTimeSeconds = 946_684_800 + 30;
        var app = NewApp();

        app.Tick();
        app.Tick();

        Assert.Equal(DeviceState.WaitingForTime, app.State);
        Assert.Empty(transport.Connects);
        Assert.Single(log.Lines, l => l.Contains("SNTP", StringComparison.Ordinal));

        clock.UnixTimeSeconds = 1_780_000_000;
        app.Tick();
        Assert.Equal(DeviceState.Connected, app.State);
    }

    [Fact]
    public void Connect_UsesHubCredentials_SubscribesThenRequestsTwin()
    {
        var app = NewApp();

        app.Tick();

        var connect = Assert.Single(transport.Connects);
        Assert.Equal(("my-hub.azure-devices.net", 8883, "esp32-01", "my-hub.azure-devices.net/esp32-01/?api-version=2021-04-12", false),
            (connect.Host, connect.Port, connect.ClientId, connect.Username, connect.CleanSession));
        var expiry = clock.UnixTimeSeconds + 86400;
        Assert.Equal(IoTHubMqtt.Core.Connection.SasToken.CreateAt("my-hub.azure-devices.net/devices/esp32-01", Convert.FromBase64String(ConfigurationTests.Key), expiry), connect.Password);
        Assert.Equal(["devices/esp32-01/messages/devicebound/#", "$iothub/methods/POST/#", "$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#"], transport.Subscriptions);
        Assert.StartsWith("$iothub/twin/GET/?$rid=", Assert.Single(transport.Published).Topic, StringComparison.Ordinal);
        Assert.Equal(expiry, app.TokenExpiry);
    }

    [Fact]
    public void Twin_DesiredInterval_AppliedThenReportedThenTelemetryOnSchedule()
    {
        var app = Connected("{\"telemetryInterval\":5,\"$version\":4}");

        Assert.Equal(5, app.TelemetryIntervalSeconds);
        Assert.Equal(4, app.DesiredVersion);
        var reported = Json(transport.Last("$iothub/twin/PATCH/properties/reported/").Body);
        Assert.Equal("1.2.3", reported["firmwareVersion"]);
        Assert.Equal("powerOn", reported["resetReason"]);
        Assert.Equal(-61L, reported["rssi"]);
        Assert.Equal(5L, reported["telemetryInterval"]);
        Assert.True(reported.Contains("uptime"));

        var telemetry = transport.Published.Where(p => p.Topic.StartsWith("devices/esp32-01/messages/events/", StringComparison.Ordinal)).ToList();
        Assert.Single(telemetry);
        Assert.Contains("$.ct=application%2Fjson", telemetry[0].Topic, StringComparison.Ordinal);
        Assert.Equal(1, telemetry[0].Qos);

        clock.Advance(4_900);
        app.Tick();
        Assert.Equal(1, app.TelemetrySent);
        clock.Advance(200);
        app.Tick();
        Assert.Equal(2, app.TelemetrySent);
    }

    [Fact]
    public void NoTwinAnswer_ReportsAndSendsTelemetryAfterTimeout()
    {
        var app = NewApp();
        app.Tick();

        clock.Advance(DeviceApp.TwinTimeoutMilliseconds);
        app.Tick();

        Assert.Contains(transport.Published, p => p.Topic.StartsWith("$iothub/twin/PATCH/properties/reported/", StringComparison.Ordinal));
        Assert.Equal(1, app.TelemetrySent);
    }

    [Fact]
    public void DesiredPatch_NewerVersionApplies_OlderIgnored_NullRestoresConfigured()
    {
        var app = Connected("{\"telemetryInterval\":20,\"$version\":5}");

        transport.Deliver("$iothub/twin/PATCH/properties/desired/?$version=5", "{\"telemetryInterval\":99}");
        app.Tick();
        Assert.Equal(20, app.TelemetryIntervalSeconds);

        transport.Deliver("$iothub/twin/PATCH/properties/desired/?$version=6", "{\"telemetryInterval\":30,\"$version\":6}");
        app.Tick();
        Assert.Equal(30, app.TelemetryIntervalSeconds);
        Assert.Equal(30L, Json(transport.Last("$iothub/twin/PATCH/properties/reported/").Body)["telemetryInterval"]);

        transport.Deliver("$iothub/twin/PATCH/properties/desired/?$version=7", "{\"telemetryInterval\":null}");
        app.Tick();
        Assert.Equal(60, app.TelemetryIntervalSeconds);
    }

    [Fact]
    public void DesiredPatch_ArrivingBeforeOlderTwinDocument_IsKept()
    {
        var app = NewApp();
        app.Tick();
        var rid = transport.Last("$iothub/twin/GET/").Topic.Split("$rid=")[1];

        transport.Deliver("$iothub/twin/PATCH/properties/desired/?$version=8", "{\"telemetryInterval\":12,\"$version\":8}");
        transport.Deliver("$iothub/twin/res/200/?$rid=" + rid, "{\"desired\":{\"telemetryInterval\":40,\"$version\":7},\"reported\":{}}");
        app.Tick();

        Assert.Equal(12, app.TelemetryIntervalSeconds);
        Assert.Equal(8, app.DesiredVersion);
    }

    [Fact]
    public void CloudMessageHandlerThatThrows_IsLoggedAndTheAppGoesOn()
    {
        var app = Connected();
        app.CloudMessage = (body, properties) => throw new InvalidOperationException("handler bug");

        transport.Deliver("devices/esp32-01/messages/devicebound/", "x");
        transport.Deliver("$iothub/methods/POST/blink/?$rid=5", "");
        app.Tick();

        Assert.Contains(log.Lines, l => l.Contains("handler bug", StringComparison.Ordinal));
        Assert.Equal("$iothub/methods/res/200/?$rid=5", transport.Last("$iothub/methods/res/").Topic);
    }

    [Fact]
    public void DesiredPatch_InvalidInterval_KeepsCurrentAndReportsIt()
    {
        var app = Connected("{\"telemetryInterval\":20,\"$version\":1}");
        var before = transport.Published.Count;

        transport.Deliver("$iothub/twin/PATCH/properties/desired/?$version=2", "{\"telemetryInterval\":100000}");
        app.Tick();

        Assert.Equal(20, app.TelemetryIntervalSeconds);
        Assert.Contains(log.Lines, l => l.StartsWith("warn: Desired telemetryInterval", StringComparison.Ordinal));
        Assert.Contains(transport.Published.Skip(before), p => p.Topic.StartsWith("$iothub/twin/PATCH/properties/reported/", StringComparison.Ordinal) && p.Body == "{\"telemetryInterval\":20}");
    }

    [Theory]
    [InlineData("blink", "{\"count\":4}", 200, "{\"blinked\":4}")]
    [InlineData("blink", "", 200, "{\"blinked\":3}")]
    [InlineData("blink", "{\"count\":0}", 400, null)]
    [InlineData("blink", "{\"count\":\"many\"}", 400, null)]
    [InlineData("blink", "{not json", 400, null)]
    [InlineData("setInterval", "{\"seconds\":15}", 200, "{\"telemetryInterval\":15}")]
    [InlineData("setInterval", "45", 200, "{\"telemetryInterval\":45}")]
    [InlineData("setInterval", "{\"seconds\":0}", 400, null)]
    [InlineData("setInterval", "\"10\"", 400, null)]
    [InlineData("selfDestruct", "{}", 404, null)]
    public void Methods_AnswerWithHubStatusCodes(string method, string payload, int status, string? body)
    {
        var app = Connected();

        transport.Deliver("$iothub/methods/POST/" + method + "/?$rid=42", payload);
        app.Tick();

        var response = transport.Last("$iothub/methods/res/");
        Assert.Equal("$iothub/methods/res/" + status + "/?$rid=42", response.Topic);
        if (body is not null)
        {
            Assert.Equal(body, response.Body);
        }
        else
        {
            Assert.IsType<string>(Json(response.Body)["message"]);
        }
    }

    [Fact]
    public void Blink_DrivesTheLed_SetInterval_ChangesScheduleAndReports()
    {
        var app = Connected();

        transport.Deliver("$iothub/methods/POST/blink/?$rid=1", "{\"count\":2}");
        transport.Deliver("$iothub/methods/POST/setInterval/?$rid=2", "{\"seconds\":7}");
        app.Tick();

        Assert.Equal([2], hardware.Blinks);
        Assert.Equal(7, app.TelemetryIntervalSeconds);
        Assert.Equal("{\"telemetryInterval\":7}", transport.Last("$iothub/twin/PATCH/properties/reported/").Body);
    }

    [Fact]
    public void Reboot_AnswersFirstThenRestartsAfterDelay()
    {
        var app = Connected();

        transport.Deliver("$iothub/methods/POST/reboot/?$rid=9", "{\"delaySeconds\":1}");
        app.Tick();

        Assert.Equal("$iothub/methods/res/200/?$rid=9", transport.Last("$iothub/methods/res/").Topic);
        Assert.Equal(DeviceState.Rebooting, app.State);
        Assert.Equal(0, hardware.Reboots);
        clock.Advance(1_000);
        app.Tick();
        app.Tick();
        Assert.Equal(1, hardware.Reboots);
    }

    [Fact]
    public void ReportedUpdate_Unanswered_IsSentAgain_NewerValueWins()
    {
        var app = Connected();
        transport.Deliver("$iothub/methods/POST/setInterval/?$rid=1", "10");
        app.Tick();
        transport.Deliver("$iothub/methods/POST/setInterval/?$rid=2", "12");
        app.Tick();
        var sent = transport.Published.Count(p => p.Topic.StartsWith("$iothub/twin/PATCH/properties/reported/", StringComparison.Ordinal));

        clock.Advance(DeviceApp.ReportedTimeoutMilliseconds);
        app.Tick();

        Assert.Equal(sent + 1, transport.Published.Count(p => p.Topic.StartsWith("$iothub/twin/PATCH/properties/reported/", StringComparison.Ordinal)));
        Assert.Equal("{\"telemetryInterval\":12}", transport.Last("$iothub/twin/PATCH/properties/reported/").Body);
    }

    [Fact]
    public void ReportedUpdate_Throttled_IsRetriedLater()
    {
        var app = Connected();
        transport.Deliver("$iothub/methods/POST/setInterval/?$rid=1", "10");
        app.Tick();
        var rid = transport.Last("$iothub/twin/PATCH/properties/reported/").Topic.Split("$rid=")[1];

        transport.Deliver("$iothub/twin/res/429/?$rid=" + rid, string.Empty);
        app.Tick();
        var before = transport.Published.Count;
        clock.Advance(5_000);
        app.Tick();

        var retry = transport.Published.Skip(before).Single(p => p.Topic.StartsWith("$iothub/twin/PATCH/properties/reported/", StringComparison.Ordinal));
        Assert.Equal("{\"telemetryInterval\":10}", retry.Body);
    }

    [Fact]
    public void CloudToDevice_IsCountedAndHandedOver()
    {
        var app = Connected();
        string? received = null;
        app.CloudMessage = (body, properties) => received = System.Text.Encoding.UTF8.GetString(body) + "|" + properties["color"];

        transport.Deliver("devices/esp32-01/messages/devicebound/%24.mid=1&color=dark+red", "hello");
        app.Tick();

        Assert.Equal(1, app.CloudMessagesReceived);
        Assert.Equal("hello|dark red", received);
    }

    [Fact]
    public void ConnectRefused_BacksOffExponentiallyWithJitterAndCap()
    {
        for (var i = 0; i < 12; i++)
        {
            transport.ConnectResults.Enqueue(5);
        }

        var app = NewApp();
        var delays = new List<long>();
        for (var attempt = 0; attempt < 12; attempt++)
        {
            app.Tick();
            delays.Add(app.NextAttemptAt - clock.UptimeMilliseconds);
            clock.Advance(app.NextAttemptAt - clock.UptimeMilliseconds);
        }

        Assert.Equal(12, transport.Connects.Count);
        for (var n = 0; n < delays.Count; n++)
        {
            var ceiling = Math.Min(300_000, 1000L << n);
            Assert.InRange(delays[n], ceiling / 2, ceiling);
        }

        Assert.Contains(log.Lines, l => l.Contains("not authorized", StringComparison.Ordinal));
        transport.ConnectResults.Clear();
        app.Tick();
        Assert.Equal(DeviceState.Connected, app.State);
        Assert.Equal(0, app.ConsecutiveFailures);
    }

    [Fact]
    public void ConnectionLost_ReconnectsAfterBackoff_AndReadsTwinAgain()
    {
        var app = Connected();
        transport.IsConnected = false;

        app.Tick();
        Assert.Equal(DeviceState.Disconnected, app.State);
        Assert.Single(transport.Connects);

        clock.Advance(app.NextAttemptAt - clock.UptimeMilliseconds);
        app.Tick();

        Assert.Equal(2, transport.Connects.Count);
        Assert.Equal(2, transport.Published.Count(p => p.Topic.StartsWith("$iothub/twin/GET/", StringComparison.Ordinal)));
    }

    [Fact]
    public void TokenRenewal_At85Percent_ReconnectsWithNewPassword()
    {
        var app = Connected();
        var firstExpiry = app.TokenExpiry;

        clock.UnixTimeSeconds += 73_439;
        app.Tick();
        Assert.Single(transport.Connects);

        clock.UnixTimeSeconds += 1;
        app.Tick();

        Assert.Equal(2, transport.Connects.Count);
        Assert.NotEqual(transport.Connects[0].Password, transport.Connects[1].Password);
        Assert.Equal(firstExpiry + 73_440, app.TokenExpiry);
        Assert.EndsWith("&se=" + app.TokenExpiry, transport.Connects[1].Password, StringComparison.Ordinal);
        Assert.Equal(DeviceState.Connected, app.State);
    }

    [Fact]
    public void Dps_RegistersPollsThenConnectsToAssignedHub()
    {
        var config = DeviceConfiguration.FromJson("{\"wifi\":{\"ssid\":\"lab\"},\"dps\":{\"idScope\":\"0ne00AB\",\"registrationId\":\"esp32-07\",\"symmetricKey\":\"" + ConfigurationTests.Key + "\",\"globalEndpoint\":\"dps.local\"},\"port\":18884}");
        var app = new DeviceApp(config, transport, new NetHmacSha256(), clock, hardware, log, "1.0.0", new Random(1));

        app.Tick();
        Assert.Equal(DeviceState.Provisioning, app.State);
        var dps = Assert.Single(transport.Connects);
        Assert.Equal(("dps.local", 18884, "esp32-07", "0ne00AB/registrations/esp32-07/api-version=2019-03-31", true), (dps.Host, dps.Port, dps.ClientId, dps.Username, dps.CleanSession));
        Assert.EndsWith("&skn=registration", dps.Password, StringComparison.Ordinal);
        Assert.Equal("{\"registrationId\":\"esp32-07\"}", transport.Last("$dps/registrations/PUT/iotdps-register/").Body);

        transport.Deliver("$dps/registrations/res/202/?$rid=1&retry-after=2", "{\"operationId\":\"op-9\",\"status\":\"assigning\"}");
        app.Tick();
        clock.Advance(2_000);
        app.Tick();
        Assert.StartsWith("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=", transport.Published[^1].Topic, StringComparison.Ordinal);
        Assert.EndsWith("&operationId=op-9", transport.Published[^1].Topic, StringComparison.Ordinal);

        transport.Deliver("$dps/registrations/res/200/?$rid=2", "{\"operationId\":\"op-9\",\"status\":\"assigned\",\"registrationState\":{\"assignedHub\":\"hub-b.local\",\"deviceId\":\"esp32-07\"}}");
        app.Tick();
        app.Tick();

        Assert.Equal(DeviceState.Connected, app.State);
        Assert.Equal("hub-b.local", app.HubHostName);
        Assert.Equal(("hub-b.local", 18884, "hub-b.local/esp32-07/?api-version=2021-04-12"), (transport.Connects[1].Host, transport.Connects[1].Port, transport.Connects[1].Username));
    }

    [Fact]
    public void Dps_Refused_BacksOff()
    {
        var config = DeviceConfiguration.FromJson("{\"wifi\":{\"ssid\":\"lab\"},\"dps\":{\"idScope\":\"0ne00AB\",\"registrationId\":\"esp32-07\",\"symmetricKey\":\"" + ConfigurationTests.Key + "\"}}");
        var app = new DeviceApp(config, transport, new NetHmacSha256(), clock, hardware, log, "1.0.0", new Random(1));
        app.Tick();

        transport.Deliver("$dps/registrations/res/401/?$rid=1", "{\"errorCode\":401002}");
        app.Tick();

        Assert.Equal(DeviceState.Disconnected, app.State);
        Assert.Null(app.HubHostName);
        Assert.Equal(1, app.ConsecutiveFailures);
    }

    [Fact]
    public void Logs_NeverContainKeyOrToken()
    {
        var app = Connected();
        clock.UnixTimeSeconds += 80_000;
        app.Tick();

        var all = string.Join("\n", log.Lines);
        Assert.DoesNotContain(ConfigurationTests.Key, all, StringComparison.Ordinal);
        Assert.DoesNotContain("SharedAccessSignature", all, StringComparison.Ordinal);
    }
}
