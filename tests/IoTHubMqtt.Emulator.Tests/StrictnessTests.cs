using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Testing;
using MQTTnet.Protocol;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// Strict where MQTT 3.1.1 and the hub are: a packet with a malformed UTF-8 string (§1.5.3: ill-formed, an encoded
/// surrogate, or U+0000) or a topic name with a wildcard (§4.7.1) closes the connection unacknowledged, whatever its
/// place (CONNECT user name, PUBLISH topic, SUBSCRIBE filter); a reported-properties patch that is not clean JSON gets
/// the hub's 400 on the response topic and the connection stays. Driven with hand-written packets below any client library.
/// </summary>
public sealed class StrictnessTests(EmulatorFixture fixture) : IClassFixture<EmulatorFixture>
{
    public static TheoryData<string, byte[]> BadTopics => new()
    {
        { "ill-formed UTF-8", [0xC3, 0x28] },
        { "an encoded surrogate (U+D800)", [0xED, 0xA0, 0x80] },
        { "an overlong encoding", [0xC0, 0xAF] },
        { "U+0000", [0x00] },
        { "a '+' wildcard", "a+b"u8.ToArray() },
        { "a '#' wildcard", "#"u8.ToArray() },
    };

    [Theory]
    [MemberData(nameof(BadTopics))]
    public async Task Publish_WithAMalformedTopic_ClosesTheConnection_WithoutAcknowledgingOrStoring(string what, byte[] badPart)
    {
        var (id, key) = fixture.CreateDevice("strict");
        await using var raw = await RawDevice.ConnectAsync(fixture.Emulator, id, key);
        var before = fixture.Emulator.Hub.Telemetry.NextSequenceNumber;
        var topic = Encoding.UTF8.GetBytes($"devices/{id}/messages/events/p=").Concat(badPart).ToArray();

        await raw.SendAsync(Publish(topic, "x"u8.ToArray(), packetId: 7));

        Assert.True(await raw.ClosedAsync(), $"a topic with {what} was answered instead of closing the connection");
        Assert.Empty(await fixture.Emulator.Hub.Telemetry.ReadAsync(before, 10, id, TimeSpan.Zero));
        Assert.Contains(fixture.Log, line => line.Contains($"'{id}'", StringComparison.Ordinal) && line.Contains("MQTT 3.1.1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Publish_WithWellFormedNonAsciiTopic_IsAcknowledged()
    {
        var (id, key) = fixture.CreateDevice("strict");
        await using var raw = await RawDevice.ConnectAsync(fixture.Emulator, id, key);
        await raw.SendAsync(Publish(Encoding.UTF8.GetBytes($"devices/{id}/messages/events/city=Zürich&emoji=🌡"), "x"u8.ToArray(), packetId: 9));
        Assert.Equal(new byte[] { 0x40, 0x02, 0x00, 0x09 }, await raw.ReadAsync(4));
    }

    [Theory]
    [InlineData(new byte[] { 0x00 })]
    [InlineData(new byte[] { 0xFF })]
    public async Task Connect_WithAUserNameThatIsNotCleanUtf8_IsRefused(byte[] tail)
    {
        var (id, key) = fixture.CreateDevice("strict");
        var userName = Encoding.UTF8.GetBytes($"{fixture.Emulator.HostName}/{id}/?api-version=2021-04-12").Concat(tail).ToArray();
        await using var raw = await RawDevice.OpenAsync(fixture.Emulator);
        await raw.SendAsync(Connect(Encoding.UTF8.GetBytes(id), userName, Encoding.UTF8.GetBytes(MqttTestDevice.Token(fixture.Emulator, id, key))));

        // Either the connection closes (§1.5.3) or a CONNACK refuses it: never a session.
        var answer = await raw.ReadAsync(4);
        Assert.True(answer.Length < 4 || answer[3] != 0, $"connected with a user name ending in 0x{tail[0]:X2}");
    }

    [Fact]
    public async Task Subscribe_WithAFilterThatIsNotCleanUtf8_ClosesTheConnection()
    {
        var (id, key) = fixture.CreateDevice("strict");
        await using var raw = await RawDevice.ConnectAsync(fixture.Emulator, id, key);
        var filter = Encoding.UTF8.GetBytes($"devices/{id}/messages/devicebound/").Concat(new byte[] { 0xED, 0xB0, 0x80, (byte)'#' }).ToArray();
        await raw.SendAsync(Packet(0x82, [0x00, 0x01, .. Prefixed(filter), 0x01]));
        Assert.True(await raw.ClosedAsync());
    }

    public static TheoryData<string, string> BadPatches => new()
    {
        { "a duplicate key", """{"fw":"1.0","fw":"2.0"}""" },
        { "a duplicate key deeper down", """{"net":{"ip":"a","ip":"b"}}""" },
        { "a lone surrogate", """{"name":"\ud800"}""" },
        { "a lone surrogate in a name", """{"\udc00x":1}""" },
        { "not JSON", """{"fw":""" },
        { "an array", "[1,2]" },
    };

    [Theory]
    [MemberData(nameof(BadPatches))]
    public async Task ReportedPatch_ThatIsNotCleanJson_IsAnswered400_AndTheConnectionStays(string what, string patch)
    {
        await using var device = await fixture.ConnectNewDeviceAsync("strict");
        await device.SubscribeAsync("$iothub/twin/res/#");
        await device.PublishAsync("$iothub/twin/PATCH/properties/reported/?$rid=7", patch);

        var answer = await device.ReceiveAsync("$iothub/twin/res/");
        Assert.True(answer.Topic == "$iothub/twin/res/400/?$rid=7", $"{what}: answered {answer.Topic}");
        Assert.Equal(400027, JsonNode.Parse(MqttTestDevice.Text(answer))!["errorCode"]!.GetValue<int>());
        await device.PublishAsync("$iothub/twin/GET/?$rid=8", "");
        Assert.Equal("$iothub/twin/res/200/?$rid=8", (await device.ReceiveAsync("$iothub/twin/res/")).Topic);
        var twin = await fixture.Service.SendAsync(HttpMethod.Get, $"twins/{device.DeviceId}");
        Assert.Equal(1, twin.Json!["properties"]!["reported"]!["$version"]!.GetValue<long>()); // nothing applied
    }

    [Fact]
    public async Task ServiceTwinPatch_WithADuplicateKey_Is400()
    {
        var (id, _) = fixture.CreateDevice("strict");
        var response = await fixture.Service.SendAsync(HttpMethod.Patch, $"twins/{id}", rawBody: """{"properties":{"desired":{"a":1,"a":2}}}"""u8.ToArray(),
            headers: new Dictionary<string, string> { ["Content-Type"] = "application/json" });
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, response.Status);
        Assert.Equal(400027, response.Json!["errorCode"]!.GetValue<int>());
    }

    internal static byte[] Publish(byte[] topic, byte[] payload, ushort packetId) =>
        Packet(0x32, [.. Prefixed(topic), (byte)(packetId >> 8), (byte)packetId, .. payload]);

    private static byte[] Connect(byte[] clientId, byte[] userName, byte[] password) =>
        Packet(0x10, [.. Prefixed("MQTT"u8.ToArray()), 0x04, 0xC2, 0x00, 0x3C, .. Prefixed(clientId), .. Prefixed(userName), .. Prefixed(password)]);

    // An MQTT string or binary field: two bytes of length, then the bytes.
    private static byte[] Prefixed(byte[] value) => [(byte)(value.Length >> 8), (byte)value.Length, .. value];

    private static byte[] Packet(byte type, byte[] body)
    {
        var packet = new List<byte> { type };
        var length = body.Length;
        do
        {
            var digit = (byte)(length % 128);
            length /= 128;
            packet.Add(length > 0 ? (byte)(digit | 0x80) : digit);
        }
        while (length > 0);
        packet.AddRange(body);
        return [.. packet];
    }

    /// <summary>A TLS connection to the emulator's MQTT port that writes whatever bytes it is given.</summary>
    internal sealed class RawDevice : IAsyncDisposable
    {
        private readonly TcpClient tcp;
        private readonly SslStream ssl;

        private RawDevice(TcpClient tcp, SslStream ssl)
        {
            this.tcp = tcp;
            this.ssl = ssl;
        }

        public static async Task<RawDevice> OpenAsync(IoTHubEmulator emulator)
        {
            var tcp = new TcpClient { NoDelay = true };
            await tcp.ConnectAsync("localhost", emulator.MqttTlsPort);
            var trust = new EmulatorTrust(emulator.CaCertificatePath);
            var ssl = new SslStream(tcp.GetStream(), false, (_, certificate, _, errors) => trust.Validate(certificate, errors));
            await ssl.AuthenticateAsClientAsync("localhost");
            return new RawDevice(tcp, ssl);
        }

        /// <summary>Opens and connects as the device (CONNACK 0 expected).</summary>
        public static async Task<RawDevice> ConnectAsync(IoTHubEmulator emulator, string id, string key)
        {
            var device = await OpenAsync(emulator);
            await device.SendAsync(Connect(Encoding.UTF8.GetBytes(id), Encoding.UTF8.GetBytes($"{emulator.HostName}/{id}/?api-version=2021-04-12"),
                Encoding.UTF8.GetBytes(MqttTestDevice.Token(emulator, id, key))));
            Assert.Equal(new byte[] { 0x20, 0x02, 0x00, 0x00 }, await device.ReadAsync(4));
            return device;
        }

        public async Task SendAsync(byte[] bytes)
        {
            await ssl.WriteAsync(bytes);
            await ssl.FlushAsync();
        }

        /// <summary>Up to <paramref name="count"/> bytes; fewer when the server closed the connection first.</summary>
        public async Task<byte[]> ReadAsync(int count)
        {
            var buffer = new byte[count];
            var read = 0;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                while (read < count)
                {
                    var n = await ssl.ReadAsync(buffer.AsMemory(read), timeout.Token);
                    if (n == 0)
                    {
                        break;
                    }

                    read += n;
                }
            }
            catch (IOException)
            {
                // reset by the server
            }

            return buffer[..read];
        }

        /// <summary>True when the server closes the connection without sending anything (no PUBACK, no SUBACK).</summary>
        public async Task<bool> ClosedAsync() => (await ReadAsync(1)).Length == 0;

        public async ValueTask DisposeAsync()
        {
            await ssl.DisposeAsync();
            tcp.Dispose();
        }
    }
}
