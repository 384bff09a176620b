using System.Net.WebSockets;
using System.Text.Json.Nodes;
using IoTHubMqtt.Testing;
using MQTTnet;
using MQTTnet.Formatter;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>MQTT over WebSockets at /$iothub/websocket on the HTTPS port, subprotocol mqtt.</summary>
public sealed class WebSocketTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    private MqttClientOptions WebSocketOptions(string id, string key) => new MqttClientOptionsBuilder()
        .WithWebSocketServer(o => o.WithUri($"wss://localhost:{fixture.Emulator.WebSocketPort}{IoTHubEmulator.WebSocketPath}"))
        .WithProtocolVersion(MqttProtocolVersion.V311)
        .WithClientId(id)
        .WithCredentials($"{fixture.Emulator.HostName}/{id}/?api-version=2021-04-12", MqttTestDevice.Token(fixture.Emulator, id, key))
        .WithTimeout(TimeSpan.FromSeconds(10))
        .WithTlsOptions(o => o.UseTls().WithCertificateValidationHandler(e => fixture.Trust.Validate(e.Certificate, e.SslPolicyErrors)))
        .Build();

    [Fact]
    public async Task WebSocketDevice_SendsTelemetryAndAnswersTwinGet()
    {
        var (id, key) = fixture.CreateDevice("ws");
        await using var device = await MqttTestDevice.ConnectAsync(WebSocketOptions(id, key), id);
        Assert.True((await device.PublishAsync($"devices/{id}/messages/events/via=ws", "over websockets")).IsSuccess);
        await device.SubscribeAsync("$iothub/twin/res/#");
        await device.PublishAsync("$iothub/twin/GET/?$rid=5", "");
        var twin = await device.ReceiveAsync("$iothub/twin/res/200/?$rid=5");
        Assert.NotNull(JsonNode.Parse(MqttTestDevice.Text(twin))!["desired"]);

        var read = await fixture.Service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={id}&timeout=5");
        Assert.Equal("ws", Assert.Single(read.Json!["messages"]!.AsArray())!["properties"]!["via"]!.GetValue<string>());
    }

    [Fact]
    public async Task WebSocketDevice_WithBadToken_IsRefused()
    {
        var (id, _) = fixture.CreateDevice("ws");
        var code = await MqttTestDevice.TryConnectAsync(WebSocketOptions(id, IoTHubMqtt.Core.Connection.SharedAccessKeys.Generate()));
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, code);
    }

    [Fact]
    public async Task WebSocketUpgrade_WithoutMqttSubprotocol_IsRejected()
    {
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("chat");
        socket.Options.RemoteCertificateValidationCallback = (_, cert, _, errors) => fixture.Trust.Validate(cert, errors);
        var error = await Assert.ThrowsAsync<WebSocketException>(() =>
            socket.ConnectAsync(new Uri($"wss://localhost:{fixture.Emulator.WebSocketPort}{IoTHubEmulator.WebSocketPath}"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.NotNull(error);
        Assert.NotEqual(WebSocketState.Open, socket.State);
    }

    [Fact]
    public async Task WebSocketClient_DeclaringAHugePacket_IsDisconnected()
    {
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("mqtt");
        socket.Options.RemoteCertificateValidationCallback = (_, cert, _, errors) => fixture.Trust.Validate(cert, errors);
        await socket.ConnectAsync(new Uri($"wss://localhost:{fixture.Emulator.WebSocketPort}{IoTHubEmulator.WebSocketPath}"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("mqtt", socket.SubProtocol);
        await socket.SendAsync(new byte[] { 0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        var buffer = new byte[64];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            var result = await socket.ReceiveAsync(buffer, cts.Token);
            Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        }
        catch (WebSocketException)
        {
            // closed without a close frame: also a refusal
        }

        Assert.False(cts.IsCancellationRequested, "The server did not end the WebSocket session.");
    }
}
