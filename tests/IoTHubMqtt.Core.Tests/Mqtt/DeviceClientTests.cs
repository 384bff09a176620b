using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Mqtt;

/// <summary>The core device client against the emulator over MQTT/TLS, the service side over its REST API.</summary>
public sealed class DeviceClientTests(EmulatorFixture hub) : IClassFixture<EmulatorFixture>
{
    [Fact]
    public async Task SendTelemetry_WithSystemAndApplicationProperties_HubReceivesThem()
    {
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key);
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var message = TelemetryMessage.FromText("{\"t\":21.5}", "application/json");
        message.MessageId = "m-1";
        message.CorrelationId = "c-1";
        message.Properties.Add(new("room", "kitchen & hall"));
        var result = await client.SendTelemetryAsync(message, TestContext.Current.CancellationToken);

        Assert.Equal("m-1", result.MessageId);
        var received = Assert.Single(await HubProbe.TelemetryAsync(hub.Service, id, 1, TimeSpan.FromSeconds(10)));
        Assert.Equal("{\"t\":21.5}", HubProbe.Body(received));
        Assert.Equal("kitchen & hall", received["properties"]!["room"]!.GetValue<string>());
        Assert.Equal("m-1", received["systemProperties"]!.AsObject().First(p => p.Key.Contains("message", StringComparison.OrdinalIgnoreCase) || p.Key.EndsWith("mid", StringComparison.Ordinal)).Value!.GetValue<string>());
    }

    [Fact]
    public async Task TelemetrySend_ManyWithoutWaitingForAcknowledgements_AllAcknowledgedAndReceivedInOrder()
    {
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with { MaxInFlight = 8 });
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var acknowledged = new List<Task<TelemetrySendResult>>();
        for (var i = 0; i < 500; i++)
        {
            acknowledged.Add(await client.Telemetry.SendAsync(TelemetryMessage.FromText(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), TestContext.Current.CancellationToken));
        }

        await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        Assert.Equal(0, client.Telemetry.Count);
        Assert.All(acknowledged, a => Assert.Equal(1, a.Result.Attempts));
        var received = await HubProbe.TelemetryAsync(hub.Service, id, 500, TimeSpan.FromSeconds(20));
        Assert.Equal(Enumerable.Range(0, 500).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), received.Select(HubProbe.Body));
    }

    [Fact]
    public async Task TelemetrySend_PublishesReadyTogether_LeaveInFewerWritesThanPackets()
    {
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key);
        await client.ConnectAsync(TestContext.Current.CancellationToken);
        var before = client.TransportWrites;

        var acknowledged = new List<Task<TelemetrySendResult>>();
        for (var i = 0; i < 2000; i++)
        {
            acknowledged.Add(await client.Telemetry.SendAsync(TelemetryMessage.FromText("coalesced"), TestContext.Current.CancellationToken));
        }

        await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        var after = client.TransportWrites;

        // Each write to TLS is at least one record and one socket send; a write per publish would be 2000 of them.
        var writes = after.Writes - before.Writes;
        var packets = after.Packets - before.Packets;
        Assert.True(packets >= 2000, $"{packets} packets written");
        Assert.True(writes * 2 <= packets, $"{writes} writes carried {packets} packets: publishes ready together did not leave together");
        Assert.Equal(2000, (await HubProbe.TelemetryAsync(hub.Service, id, 2000, TimeSpan.FromSeconds(20))).Count);
    }

    [Fact]
    public async Task TelemetrySend_ClientDisposedWithMessagesInTheOutbox_EachEndsWithAnErrorNotAHang()
    {
        var (id, key) = hub.CreateDevice();
        var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with { MaxInFlight = 1 });
        await client.ConnectAsync(TestContext.Current.CancellationToken);
        var acknowledged = new List<Task<TelemetrySendResult>>();
        for (var i = 0; i < 2; i++)
        {
            acknowledged.Add(await client.Telemetry.SendAsync(TelemetryMessage.FromText("q" + i), TestContext.Current.CancellationToken));
        }

        var waitingForRoom = Enumerable.Range(0, 5).Select(i => client.Telemetry.SendAsync(TelemetryMessage.FromText("w" + i), TestContext.Current.CancellationToken).AsTask()).ToList();
        await client.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        var ended = await Task.WhenAll(acknowledged.Concat(waitingForRoom.Select(async w => await await w)).Select(t => Task.WhenAny(t))).WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        var errors = ended.Select(t => t.Exception?.InnerException).ToList();
        Assert.Contains(errors, e => e is IoTHubMqttException { ErrorId: "ConnectionClosed" });
        Assert.All(ended.Zip(errors), e => Assert.True(e.First.IsCompletedSuccessfully || e.Second is IoTHubMqttException { ErrorId: "ConnectionClosed" }, $"{e.Second}"));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await client.Telemetry.SendAsync(TelemetryMessage.FromText("late"), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task WebSocketTransport_TelemetryAndTwin_Work()
    {
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with { Transport = IoTHubTransport.WebSocket, Port = hub.Emulator.WebSocketPort });
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        await client.SendTelemetryAsync(TelemetryMessage.FromText("over websockets"), TestContext.Current.CancellationToken);
        var version = await client.UpdateReportedPropertiesAsync(new JsonObject { ["transport"] = "ws" }, TestContext.Current.CancellationToken);

        Assert.Equal(IoTHubTransport.WebSocket, client.Transport);
        Assert.True(version > 0);
        Assert.Equal("over websockets", HubProbe.Body(Assert.Single(await HubProbe.TelemetryAsync(hub.Service, id, 1, TimeSpan.FromSeconds(10)))));
    }

    [Fact]
    public async Task SendTelemetry_TooLarge_IsRejectedBeforeSending()
    {
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key);
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => client.SendTelemetryAsync(new TelemetryMessage(new byte[(256 * 1024) + 1]), TestContext.Current.CancellationToken));

        Assert.Equal("MessageTooLarge", ex.ErrorId);
        Assert.Equal(IoTHubConnectionState.Connected, client.State);
    }

    [Fact]
    public async Task CloudToDevice_ReceivedWithPropertiesAndCompleted_IsNotRedelivered()
    {
        var (id, key) = hub.CreateDevice();
        await using (var client = HubProbe.NewClient(hub.Emulator, id, key))
        {
            await client.ConnectAsync(TestContext.Current.CancellationToken);
            await HubProbe.SendCloudToDeviceAsync(hub.Service, id, "turn on", "c2d-1", new Dictionary<string, string> { ["kind"] = "command" });

            var message = await client.ReceiveCloudToDeviceAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

            Assert.NotNull(message);
            Assert.Equal("turn on", message.BodyText);
            Assert.Equal("c2d-1", message.MessageId);
            Assert.Equal("command", message.Properties["kind"]);
            Assert.Null(message.ExpiryTime); // the hub's default time to live is not shown to the device
            await message.CompleteAsync(TestContext.Current.CancellationToken);

            // A round trip on the same connection: the hub handles a connection's packets in order, so when the twin
            // answer arrives it has handled the PUBACK before it.
            await client.GetTwinAsync(TestContext.Current.CancellationToken);
        }

        await using var again = HubProbe.NewClient(hub.Emulator, id, key);
        await again.ConnectAsync(TestContext.Current.CancellationToken);
        await HubProbe.SendCloudToDeviceAsync(hub.Service, id, "next", "c2d-next");

        // Messages come in queue order: had the completed one stayed queued, it would come before this one.
        var first = await again.ReceiveCloudToDeviceAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal("c2d-next", first?.MessageId);
    }

    [Fact]
    public async Task CloudToDevice_NotCompleted_IsDeliveredAgainAfterReconnect()
    {
        var (id, key) = hub.CreateDevice();
        await using (var client = HubProbe.NewClient(hub.Emulator, id, key))
        {
            await client.ConnectAsync(TestContext.Current.CancellationToken);
            await HubProbe.SendCloudToDeviceAsync(hub.Service, id, "keep me", "c2d-2");
            var first = await client.ReceiveCloudToDeviceAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
            Assert.Equal("keep me", first?.BodyText);
        }

        await using var again = HubProbe.NewClient(hub.Emulator, id, key);
        await again.ConnectAsync(TestContext.Current.CancellationToken);
        var redelivered = await again.ReceiveCloudToDeviceAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal("c2d-2", redelivered?.MessageId);
    }

    [Fact]
    public async Task CloudToDevice_SentWhileOffline_ArrivesAfterConnect()
    {
        var (id, key) = hub.CreateDevice();
        await HubProbe.SendCloudToDeviceAsync(hub.Service, id, "while you were out", "c2d-offline");

        await using var client = HubProbe.NewClient(hub.Emulator, id, key);
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var message = await client.ReceiveCloudToDeviceAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal("while you were out", message?.BodyText);
    }

    [Fact]
    public async Task Method_Registered_IsAnsweredWithStatusAndPayload()
    {
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key);
        await client.ConnectAsync(TestContext.Current.CancellationToken);
        client.RegisterMethod("setInterval");

        var call = HubProbe.InvokeMethodAsync(hub.Service, id, "setInterval", new JsonObject { ["seconds"] = 5 });
        var request = await client.ReceiveMethodRequestAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.NotNull(request);
        Assert.Equal(5, request.PayloadJson!["seconds"]!.GetValue<int>());
        await client.RespondToMethodAsync(request, 200, Encoding.UTF8.GetBytes("{\"interval\":5}"), TestContext.Current.CancellationToken);

        var response = await call;
        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal(200, response.Json!["status"]!.GetValue<int>());
        Assert.Equal(5, response.Json["payload"]!["interval"]!.GetValue<int>());
    }

    [Fact]
    public async Task Method_NotRegistered_IsAnswered501Promptly()
    {
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key);
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var response = await HubProbe.InvokeMethodAsync(hub.Service, id, "selfDestruct", null, timeoutSeconds: 30);

        // 501 is the device's own answer (a call nobody answers times out with 504 after 30 s).
        Assert.Equal(501, response.Json!["status"]!.GetValue<int>());
        Assert.Contains("selfDestruct", response.Json["payload"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Twin_ReportedPatchAndDesiredUpdate_RoundTrip()
    {
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key);
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var before = await client.GetTwinAsync(TestContext.Current.CancellationToken);
        var version = await client.UpdateReportedPropertiesAsync(new JsonObject { ["firmware"] = "1.2.3", ["sensor"] = new JsonObject { ["ok"] = true } }, TestContext.Current.CancellationToken);
        Assert.True(version > before.ReportedVersion);
        var removed = await client.UpdateReportedPropertiesAsync(new JsonObject { ["sensor"] = null }, TestContext.Current.CancellationToken);
        Assert.True(removed > version);

        await HubProbe.PatchDesiredAsync(hub.Service, id, new JsonObject { ["telemetryInterval"] = 30 });
        var update = await client.ReceiveDesiredPropertiesAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal(30, update?.Patch["telemetryInterval"]!.GetValue<int>());

        var after = await client.GetTwinAsync(TestContext.Current.CancellationToken);
        Assert.Equal("1.2.3", after.Reported["firmware"]!.GetValue<string>());
        Assert.False(after.Reported.ContainsKey("sensor"));
        Assert.Equal(30, after.Desired["telemetryInterval"]!.GetValue<int>());
        Assert.Equal(update!.Version, after.DesiredVersion);
    }

    [Fact]
    public async Task Twin_PatchDeeperThanTen_IsRejectedLocally()
    {
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key);
        await client.ConnectAsync(TestContext.Current.CancellationToken);
        var deep = new JsonObject();
        var node = deep;
        for (var i = 0; i < 11; i++)
        {
            var child = new JsonObject();
            node["l" + i] = child;
            node = child;
        }

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => client.UpdateReportedPropertiesAsync(deep, TestContext.Current.CancellationToken));

        Assert.Equal("TwinPatchTooDeep", ex.ErrorId);
    }

    [Fact]
    public async Task Connect_WrongKey_IsUnauthorized()
    {
        var (id, _) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, Convert.ToBase64String(new byte[32]));

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => client.ConnectAsync(TestContext.Current.CancellationToken));

        Assert.Equal("IoTHubUnauthorized", ex.ErrorId);
        Assert.Equal(IoTHubErrorKind.Unauthorized, ex.Kind);
        Assert.Equal(IoTHubConnectionState.Disconnected, client.State);
    }

    [Fact]
    public async Task Connect_WithoutTheEmulatorCa_FailsTls()
    {
        var (id, key) = hub.CreateDevice();
        await using var client = HubProbe.NewClient(hub.Emulator, id, key, o => o with { CaCertificatePath = null });

        var ex = await Assert.ThrowsAsync<IoTHubMqttException>(() => client.ConnectAsync(TestContext.Current.CancellationToken));

        Assert.Equal("TlsAuthenticationFailed", ex.ErrorId);
    }

    [Fact]
    public void Connect_WithAFixedExpiredToken_FailsClearly()
    {
        var (id, key) = hub.CreateDevice();
        var token = IoTHubMqtt.Core.Connection.SasToken.CreateAt($"{hub.Emulator.HostName}/devices/{id}", Convert.FromBase64String(key), DateTimeOffset.UtcNow.AddSeconds(-30).ToUnixTimeSeconds());

        var ex = Assert.Throws<IoTHubMqttException>(() => _ = new IoTHubDeviceClient(new IoTHubDeviceClientOptions
        {
            HostName = hub.Emulator.HostName, DeviceId = id, SharedAccessSignature = token, Port = hub.Emulator.MqttTlsPort, CaCertificatePath = hub.Emulator.CaCertificatePath,
        }));

        Assert.Equal("SasTokenExpired", ex.ErrorId);
    }
}
