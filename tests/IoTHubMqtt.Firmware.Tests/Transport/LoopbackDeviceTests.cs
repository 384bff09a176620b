using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using IoTHubDevice.Logic.Configuration;
using IoTHubDevice.Logic.Device;
using IoTHubDevice.Logic.Json;
using IoTHubDevice.Logic.Platform;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using CoreConfig = IoTHubMqtt.Core.NanoFramework.DeviceConfiguration;
using CoreFormat = IoTHubMqtt.Core.NanoFramework.DeviceConfigurationFormat;
using CoreSas = IoTHubMqtt.Core.Connection.SasToken;

using IoTHubMqtt.FirmwareDevice;

namespace IoTHubMqtt.Firmware.Tests.Transport;

/// <summary>The device logic over the MQTTnet transport adapter, on real TLS sockets on 127.0.0.1.</summary>
public sealed class LoopbackDeviceTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static async Task<(IMqttClient Client, ConcurrentQueue<(string Topic, string Body)> Seen)> ObserverAsync(LoopbackBroker broker, params string[] filters)
    {
        var seen = new ConcurrentQueue<(string, string)>();
        var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            seen.Enqueue((e.ApplicationMessage.Topic, Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(e.ApplicationMessage.Payload))));
            return Task.CompletedTask;
        };
        var roots = new X509Certificate2Collection();
        roots.ImportFromPem(broker.CaPem);
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", broker.Port)
            .WithProtocolVersion(MqttProtocolVersion.V311)
            .WithClientId("observer")
            .WithTlsOptions(o => o.UseTls().WithTargetHost("127.0.0.1").WithTrustChain(roots).WithRevocationMode(X509RevocationMode.NoCheck))
            .Build();
        using var cts = new CancellationTokenSource(Wait);
        await client.ConnectAsync(options, cts.Token);
        var subscribe = new MqttClientSubscribeOptionsBuilder();
        foreach (var filter in filters)
        {
            subscribe.WithTopicFilter(filter, MqttQualityOfServiceLevel.AtLeastOnce);
        }

        await client.SubscribeAsync(subscribe.Build(), cts.Token);
        return (client, seen);
    }

    private static async Task<(string Topic, string Body)> WaitForAsync(ConcurrentQueue<(string Topic, string Body)> seen, Func<(string Topic, string Body), bool> match)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Wait)
        {
            foreach (var item in seen)
            {
                if (match(item))
                {
                    return item;
                }
            }

            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        throw new TimeoutException("Nothing matching arrived in " + Wait + "; seen: " + string.Join(", ", seen.Select(s => s.Topic)));
    }

    [Fact]
    public async Task Transport_TlsWithConfiguredCa_SubscribesReceivesAndPublishes()
    {
        await using var broker = await LoopbackBroker.StartAsync();
        var (observer, seen) = await ObserverAsync(broker, "up/#");
        using var transport = new MqttNetTransport();
        var received = new ConcurrentQueue<string>();
        transport.MessageReceived += (topic, payload) => received.Enqueue(topic + "=" + Encoding.UTF8.GetString(payload));

        Assert.Equal(0, transport.Connect("127.0.0.1", broker.Port, broker.CaPem, "dev1", "user", "pass", false, 60));
        Assert.True(transport.Subscribe(["down/#"]));
        await observer.PublishStringAsync("down/1", "hello", MqttQualityOfServiceLevel.AtLeastOnce, cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(transport.Publish("up/2", Encoding.UTF8.GetBytes("world"), 1));

        Assert.Equal(("up/2", "world"), await WaitForAsync(seen, s => s.Topic == "up/2"));
        var clock = Stopwatch.StartNew();
        while (received.IsEmpty && clock.Elapsed < Wait)
        {
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        Assert.Equal(["down/1=hello"], received);
        transport.Disconnect();
        Assert.False(transport.IsConnected);
        await observer.DisconnectAsync(cancellationToken: TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Transport_ServerNotSignedByTrustedRoots_FailsBeforeConnack()
    {
        await using var broker = await LoopbackBroker.StartAsync();
        using var transport = new MqttNetTransport(TimeSpan.FromSeconds(5));

        Assert.Equal(-1, transport.Connect("127.0.0.1", broker.Port, null!, "dev1", "user", "pass", false, 60));
        Assert.False(transport.IsConnected);
    }

    [Fact]
    public async Task Transport_BadCredentials_ReturnsConnackCode4()
    {
        await using var broker = await LoopbackBroker.StartAsync((user, password) => password == "right");
        using var transport = new MqttNetTransport();

        Assert.Equal(4, transport.Connect("127.0.0.1", broker.Port, broker.CaPem, "dev1", "user", "wrong", false, 60));
        Assert.Equal(0, transport.Connect("127.0.0.1", broker.Port, broker.CaPem, "dev1", "user", "right", false, 60));
    }

    [Fact]
    public async Task DeviceApp_OverTls_SignsItsTokenAppliesTwinAnswersMethodsSendsTelemetry()
    {
        const string key = ConfigurationTests.Key;
        var credentials = new ConcurrentQueue<(string User, string Password)>();
        await using var broker = await LoopbackBroker.StartAsync((user, password) =>
        {
            credentials.Enqueue((user, password));
            return true;
        });
        var (observer, seen) = await ObserverAsync(broker,
            "$iothub/twin/GET/#", "$iothub/twin/PATCH/properties/reported/#", "$iothub/methods/res/#", "devices/dev1/messages/events/#");

        // The configuration goes the way it goes to a board: the module's littlefs image of the config partition, read back
        // by the device (here: the firmware's logic on .NET), which then connects.
        var partition = CoreFormat.BuildConfigPartition(new CoreConfig
        {
            WifiSsid = "lab",
            ConnectionString = "HostName=127.0.0.1;DeviceId=dev1;SharedAccessKey=" + key,
            CaCertificatePem = broker.CaPem,
            Port = broker.Port,
        }, 0x40000);
        using var device = SimulatedDevice.StartFromConfigPartition(partition, "9.9.9");
        var hardware = device.Board;
        var app = device.App;

        try
        {
            var get = await WaitForAsync(seen, s => s.Topic.StartsWith("$iothub/twin/GET/?$rid=", StringComparison.Ordinal));
            var (user, password) = Assert.Single(credentials, c => c.User is not null);
            Assert.Equal("127.0.0.1/dev1/?api-version=2021-04-12", user);
            var expiry = long.Parse(password[(password.LastIndexOf("&se=", StringComparison.Ordinal) + 4)..], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(CoreSas.CreateAt("127.0.0.1/devices/dev1", Convert.FromBase64String(key), expiry), password);
            Assert.InRange(expiry - DateTimeOffset.UtcNow.ToUnixTimeSeconds(), 86_000, 86_400);

            var rid = get.Topic.Split("$rid=")[1];
            await observer.PublishStringAsync("$iothub/twin/res/200/?$rid=" + rid, "{\"desired\":{\"telemetryInterval\":1,\"$version\":2},\"reported\":{\"$version\":1}}", cancellationToken: TestContext.Current.CancellationToken);

            var reported = await WaitForAsync(seen, s => s.Topic.StartsWith("$iothub/twin/PATCH/properties/reported/", StringComparison.Ordinal));
            var body = (JsonObject)JsonReader.Parse(reported.Body)!;
            Assert.Equal("9.9.9", body["firmwareVersion"]);
            Assert.Equal(1L, body["telemetryInterval"]);

            await observer.PublishStringAsync("$iothub/methods/POST/blink/?$rid=77", "{\"count\":2}", cancellationToken: TestContext.Current.CancellationToken);
            var answer = await WaitForAsync(seen, s => s.Topic.StartsWith("$iothub/methods/res/", StringComparison.Ordinal));
            Assert.Equal(("$iothub/methods/res/200/?$rid=77", "{\"blinked\":2}"), answer);
            Assert.Equal([2], hardware.Blinks.ToArray());

            await WaitForAsync(seen, s => s.Topic.StartsWith("devices/dev1/messages/events/", StringComparison.Ordinal) && s.Body.Contains("\"uptime\"", StringComparison.Ordinal));
            var first = seen.Count(s => s.Topic.StartsWith("devices/dev1/messages/events/", StringComparison.Ordinal));
            await WaitForAsync(seen, _ => seen.Count(s => s.Topic.StartsWith("devices/dev1/messages/events/", StringComparison.Ordinal)) > first);
            Assert.Equal(DeviceState.Connected, app.State);
        }
        finally
        {
            device.Dispose();
            Assert.Null(device.Fault);
            await observer.DisconnectAsync(cancellationToken: TestContext.Current.CancellationToken);
        }
    }
}
