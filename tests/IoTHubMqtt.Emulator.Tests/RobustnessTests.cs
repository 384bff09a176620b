using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using IoTHubMqtt.Testing;
using MQTTnet;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>Malformed packets, huge declared lengths, silent and idle clients, bad tokens and connection churn: the hub answers and stays up.</summary>
public sealed class RobustnessTests
{
    [Fact]
    public async Task GarbageAfterTlsHandshake_ClosesThatConnectionOnly()
    {
        await using var fx = EmulatorFixture.Start(_ => { });
        using var ssl = await OpenTlsAsync(fx);
        await ssl.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + new string('A', 200)));
        Assert.True(await ClosedWithinAsync(ssl, TimeSpan.FromSeconds(10)));
        await using var device = await fx.ConnectNewDeviceAsync();
        Assert.True(device.Client.IsConnected);
    }

    [Fact]
    public async Task HugeDeclaredPacket_IsRefusedWithoutAllocatingIt()
    {
        await using var fx = EmulatorFixture.Start(_ => { });
        GC.Collect();
        var before = GC.GetTotalMemory(forceFullCollection: true);
        for (var i = 0; i < 8; i++)
        {
            using var ssl = await OpenTlsAsync(fx);
            await ssl.WriteAsync(new byte[] { 0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00 }); // PUBLISH of 268,435,455 bytes
            Assert.True(await ClosedWithinAsync(ssl, TimeSpan.FromSeconds(10)));
        }

        var grown = GC.GetTotalMemory(forceFullCollection: true) - before;
        Assert.True(grown < 64L * 1024 * 1024, $"Memory grew by {grown} bytes.");
    }

    [Fact]
    public async Task MalformedRemainingLength_ClosesTheConnection()
    {
        await using var fx = EmulatorFixture.Start(_ => { });
        using var ssl = await OpenTlsAsync(fx);
        await ssl.WriteAsync(new byte[] { 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF });
        Assert.True(await ClosedWithinAsync(ssl, TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [InlineData(new byte[] { 0x30, 0x05, 0x00, 0x01, 0x61, 0x00, 0x00 })] // PUBLISH before CONNECT
    [InlineData(new byte[] { 0x10, 0x0C, 0x00, 0x04, 0x58, 0x58, 0x58, 0x58, 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00 })] // CONNECT naming protocol "XXXX"
    [InlineData(new byte[] { 0x10, 0x04, 0x00, 0x09, 0x4D, 0x51 })] // CONNECT whose protocol name runs past the packet
    [InlineData(new byte[] { 0xF0, 0x00 })] // reserved packet type 15
    public async Task MalformedFirstPacket_ClosesTheConnectionAndTheHubStaysUp(byte[] packet)
    {
        await using var fx = EmulatorFixture.Start(_ => { });
        using (var ssl = await OpenTlsAsync(fx))
        {
            await ssl.WriteAsync(packet);
            Assert.True(await ClosedWithinAsync(ssl, TimeSpan.FromSeconds(10)));
        }

        await using var device = await fx.ConnectNewDeviceAsync();
        Assert.True(device.Client.IsConnected);
    }

    [Fact]
    public async Task Https_MalformedAndOversizedRequests_GetTheirStatusAndTheApiStaysUp()
    {
        await using var fx = EmulatorFixture.Start(_ => { });
        Assert.StartsWith("HTTP/1.1 400", await RawHttpAsync(fx, "NONSENSE\r\n\r\n"), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 431", await RawHttpAsync(fx, "GET /devices HTTP/1.1\r\nX-Big: " + new string('a', 20_000) + "\r\n\r\n"), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 413", await RawHttpAsync(fx, "PUT /devices/x?api-version=2021-04-12 HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n"), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 411", await RawHttpAsync(fx, "PUT /devices/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await fx.Service.SendAsync(HttpMethod.Get, "devices")).Status);
    }

    private static async Task<string> RawHttpAsync(EmulatorFixture fx, string request)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", fx.Emulator.HttpsPort);
        using var ssl = new SslStream(tcp.GetStream(), false, (_, cert, _, errors) => fx.Trust.Validate(cert, errors));
        await ssl.AuthenticateAsClientAsync("localhost");
        await ssl.WriteAsync(Encoding.ASCII.GetBytes(request));
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var read = await ssl.ReadAsync(buffer, cts.Token);
        return Encoding.ASCII.GetString(buffer, 0, read);
    }

    [Fact]
    public async Task SilentTcpClient_IsClosedAfterTheConnectTimeout()
    {
        await using var fx = EmulatorFixture.Start(o => o.ConnectTimeout = TimeSpan.FromSeconds(2));
        using var ssl = await OpenTlsAsync(fx);
        var watch = Stopwatch.StartNew();
        Assert.True(await ClosedWithinAsync(ssl, TimeSpan.FromMinutes(2)));
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(1), $"Closed after {watch.Elapsed}, before the connect timeout.");
    }

    [Fact]
    public async Task ConnectedClientSilentPastKeepAlive_IsDisconnected()
    {
        await using var fx = EmulatorFixture.Start(_ => { });
        var (id, key) = fx.CreateDevice();
        using var ssl = await OpenTlsAsync(fx);
        await ssl.WriteAsync(RawMqttPackets.Connect(id, $"{fx.Emulator.HostName}/{id}/?api-version=2021-04-12", MqttTestDevice.Token(fx.Emulator, id, key), keepAliveSeconds: 1));
        var connAck = new byte[4];
        await ssl.ReadExactlyAsync(connAck).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(new byte[] { 0x20, 0x02, 0x00, 0x00 }, connAck);
        Assert.True(fx.Emulator.Devices.IsConnected(id));
        Assert.True(await ClosedWithinAsync(ssl, TimeSpan.FromMinutes(2)));
        await Eventually.TrueAsync(() => !fx.Emulator.Devices.IsConnected(id));
    }

    [Fact]
    public async Task BadTokens_ManyRefusals_LeaveNoStateBehind()
    {
        await using var fx = EmulatorFixture.Start(_ => { });
        var (id, _) = fx.CreateDevice();
        var options = MqttTestDevice.Options(fx.Emulator, id, MqttTestDevice.Token(fx.Emulator, id, IoTHubMqtt.Core.Connection.SharedAccessKeys.Generate())).Build();
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(MqttClientConnectResultCode.NotAuthorized, await MqttTestDevice.TryConnectAsync(options));
        }

        Assert.Equal(0, fx.Emulator.ConnectedDeviceCount);
        Assert.Equal(0, await fx.Emulator.MqttSessionCountAsync());
    }

    [Fact]
    public async Task ConnectDisconnectChurn_TwoThousandConnections_AllServedAndNothingLeftBehind()
    {
        await using var fx = EmulatorFixture.Start(_ => { });
        var devices = Enumerable.Range(0, 50).Select(_ => fx.CreateDevice("churn")).ToArray();
        var watch = Stopwatch.StartNew();
        var done = 0;
        await Parallel.ForAsync(0, 2000, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            var (id, key) = devices[i % devices.Length];
            using var client = new MqttClientFactory().CreateMqttClient();
            var options = MqttTestDevice.Options(fx.Emulator, id, MqttTestDevice.Token(fx.Emulator, id, key)).WithClientId(id).Build();
            MqttClientConnectResult result;
            try
            {
                result = await client.ConnectAsync(options, ct);
            }
            catch (MQTTnet.Exceptions.MqttCommunicationException)
            {
                return; // taken over by a parallel connection of the same device: the hub's behaviour
            }

            if (result.ResultCode == MqttClientConnectResultCode.Success)
            {
                try
                {
                    if (i % 4 == 0)
                    {
                        await client.PublishStringAsync($"devices/{id}/messages/events/", "churn", cancellationToken: ct);
                    }

                    if (i % 3 == 0)
                    {
                        client.Dispose(); // abrupt: no DISCONNECT packet
                    }
                    else
                    {
                        await client.DisconnectAsync(cancellationToken: ct);
                    }

                    Interlocked.Increment(ref done);
                }
                catch (MQTTnet.Exceptions.MqttCommunicationException)
                {
                    // another connection of the same device took this one over: the hub's behaviour
                }
            }
        });
        watch.Stop();

        TestContext.Current.TestOutputHelper?.WriteLine($"2,000 connections churned in {watch.Elapsed.TotalSeconds:N1} s.");
        Assert.True(done > 1500, $"Only {done} of 2000 connections completed.");
        await Eventually.TrueAsync(() => fx.Emulator.ConnectedDeviceCount == 0);
        await Eventually.TrueAsync(() => fx.Emulator.Devices.SubscriptionStateCount == 0);
        Assert.Equal(0, await fx.Emulator.MqttSessionCountAsync());
        await using var device = await fx.ConnectNewDeviceAsync();
        Assert.True(device.Client.IsConnected);
    }

    private static async Task<SslStream> OpenTlsAsync(EmulatorFixture fx)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", fx.Emulator.MqttTlsPort);
        var ssl = new SslStream(tcp.GetStream(), false, (_, cert, _, errors) => fx.Trust.Validate(cert, errors));
        await ssl.AuthenticateAsClientAsync("localhost");
        return ssl;
    }

    private static async Task<bool> ClosedWithinAsync(SslStream ssl, TimeSpan timeout)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                if (await ssl.ReadAsync(buffer, cts.Token) == 0)
                {
                    return true;
                }
            }
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
