using System.Threading.Channels;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Core.Service.Registry;
using IoTHubMqtt.Emulator;
using IoTHubMqtt.Testing;
using Microsoft.Extensions.Time.Testing;

namespace IoTHubMqtt.Core.Tests.Service.Registry;

/// <summary>
/// Bulk registry writes paced by the hub's 429 answers, on a fake clock shared by the client and an emulated S1 hub: the
/// clock moves only when the client waits for the Retry-After it was given and no request is on the wire, so the elapsed
/// fake time is what a real run would wait.
/// </summary>
public sealed class RegistryPacingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class PacedRun : IAsyncDisposable
    {
        private readonly Channel<string> throttled = Channel.CreateUnbounded<string>();

        public PacedRun(IoTHubTier tier, int units, TimeSpan? maxThrottledWait = null)
        {
            Clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
            Started = Clock.GetUtcNow();
            Hub = EmulatorFixture.Start(o => { o.Tier = tier; o.Units = units; o.TimeProvider = Clock; });
            Service = new IoTHubServiceClient(new IoTHubServiceOptions
            {
                ConnectionString = Hub.Emulator.OwnerConnectionString,
                Port = Hub.Emulator.HttpsPort,
                CaCertificatePath = Hub.Emulator.CaCertificatePath,
                TimeProvider = Clock,
                MaxThrottledWait = maxThrottledWait ?? TimeSpan.FromMinutes(15),
                Log = line =>
                {
                    Lines.Enqueue($"{Clock.GetUtcNow() - Started} {line}");
                    if (line.Contains("throttled", StringComparison.Ordinal))
                    {
                        throttled.Writer.TryWrite(line);
                    }
                },
            });
        }

        public FakeTimeProvider Clock { get; }

        public DateTimeOffset Started { get; }

        public System.Collections.Concurrent.ConcurrentQueue<string> Lines { get; } = new();

        public EmulatorFixture Hub { get; }

        public IoTHubServiceClient Service { get; }

        public int Waits { get; private set; }

        /// <summary>Runs the writer over the inputs to the end, moving the clock to each Retry-After the client waits for.</summary>
        public async Task<List<DeviceOutcome>> RunAsync(DeviceRegistryWriterOptions options, IEnumerable<DeviceInput> inputs)
        {
            using var writer = new DeviceRegistryWriter(Service, options, Ct);
            foreach (var input in inputs)
            {
                writer.Add(input);
            }

            writer.Complete();
            var outcomes = new List<DeviceOutcome>();
            while (writer.NextTarget is not null)
            {
                var next = writer.WaitForNextAsync(Ct);
                var signal = throttled.Reader.WaitToReadAsync(Ct).AsTask();
                Task winner;
                try
                {
                    winner = await Task.WhenAny(next, signal).WaitAsync(TimeSpan.FromSeconds(60), Ct);
                }
                catch (TimeoutException ex)
                {
                    throw new TimeoutException($"No progress at {Clock.GetUtcNow() - Started} (gate {Service.RegistryThrottledUntil - Started}); next {writer.NextTarget}; log: {string.Join(" | ", Lines)}", ex);
                }

                if (winner == signal && throttled.Reader.TryRead(out _))
                {
                    Waits++;
                    // Time stands still while requests are on the wire: the clock moves only once every call sent is
                    // answered (the throttled ones waiting at the gate), as a real clock barely moves in that time.
                    var quiet = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                    while (Service.RequestsInFlight > 0 && DateTime.UtcNow < quiet)
                    {
                        await Task.Delay(5, Ct);
                    }

                    if (Service.RegistryThrottledUntil is { } until)
                    {
                        Clock.Advance(until - Clock.GetUtcNow());
                    }

                    continue;
                }

                outcomes.AddRange(writer.TakeReady());
            }

            return outcomes;
        }

        public async ValueTask DisposeAsync()
        {
            Service.Dispose();
            await Hub.DisposeAsync();
        }
    }

    private static IEnumerable<DeviceInput> Devices(string prefix, int count) => Enumerable.Range(0, count).Select(i => new DeviceInput { DeviceId = $"{prefix}-{i:D4}" });

    [Fact]
    public async Task S1OneUnit_250Devices_TakeExactlyTheQuotaMinimum_90FakeSeconds_AndAllAreCreated()
    {
        await using var run = new PacedRun(IoTHubTier.S1, 1);
        var start = run.Clock.GetUtcNow();

        var outcomes = await run.RunAsync(new DeviceRegistryWriterOptions { MaxParallelCalls = 1 }, Devices("pace", 250));

        // 100 a minute with a minute's burst: 100 at once, 150 more need 90 s.
        Assert.Equal(TimeSpan.FromSeconds(90), run.Clock.GetUtcNow() - start);
        Assert.Equal(250, outcomes.Count);
        Assert.All(outcomes, o => Assert.Equal(RegistryAction.Created, o.Action));
        Assert.Equal(Enumerable.Range(1, 250), outcomes.Select(o => o.Index));
        Assert.Equal(250, run.Hub.Emulator.DeviceCount);
        Assert.True(run.Service.ThrottledCount >= 1);
        Assert.All(outcomes, o => Assert.NotNull(o.Device!.ConnectionString));
    }

    [Fact]
    public async Task S1OneUnit_1000Devices_AtTheDefaults_FinishWithin10PercentOfTheQuotaMinimum_WithNoFailure()
    {
        await using var run = new PacedRun(IoTHubTier.S1, 1);

        // What New-IoTHubDevice does with pipeline input and no parameters: the writer's defaults (4 calls of 100 at once).
        var outcomes = await run.RunAsync(new DeviceRegistryWriterOptions(), Devices("fleet", 1000));

        // The quota minimum: the first minute's 100 at once, then 900 more at 100 a minute = 540 s.
        var minimum = TimeSpan.FromSeconds(540);
        var elapsed = run.Clock.GetUtcNow() - run.Started;
        Assert.InRange(elapsed, minimum, minimum * 1.1);
        Assert.Equal(1000, outcomes.Count);
        Assert.All(outcomes, o => Assert.Equal(RegistryAction.Created, o.Action));
        Assert.Equal(1000, run.Hub.Emulator.DeviceCount);
    }

    [Fact]
    public async Task S1_CallsInParallel_WaitTogether_AndEveryDeviceIsCreatedInInputOrder()
    {
        await using var run = new PacedRun(IoTHubTier.S1, 1);

        var outcomes = await run.RunAsync(new DeviceRegistryWriterOptions { MaxParallelCalls = 4 }, Devices("parallel", 350));

        Assert.Equal(Enumerable.Range(1, 350), outcomes.Select(o => o.Index));
        Assert.All(outcomes, o => Assert.Equal(RegistryAction.Created, o.Action));
        Assert.Equal(350, run.Hub.Emulator.DeviceCount);
        // Only fake time passed: at least the quota's 150 s for 250 devices over the first minute's burst.
        Assert.True(run.Clock.GetUtcNow() - run.Started >= TimeSpan.FromSeconds(150));
    }

    [Fact]
    public async Task S1TwoUnits_ReRun_IsUnchanged_AndPacedForTheReadsToo()
    {
        await using var run = new PacedRun(IoTHubTier.S1, 2);
        var first = await run.RunAsync(new DeviceRegistryWriterOptions { MaxParallelCalls = 1 }, Devices("rerun", 150));
        var keys = first.ToDictionary(o => o.Device!.DeviceId, o => o.Device!.PrimaryKey);
        var start = run.Clock.GetUtcNow();

        var again = await run.RunAsync(new DeviceRegistryWriterOptions { MaxParallelCalls = 1 }, Devices("rerun", 150));

        Assert.All(again, o => Assert.Equal(RegistryAction.Unchanged, o.Action));
        Assert.All(again, o => Assert.Equal(keys[o.Device!.DeviceId], o.Device.PrimaryKey));
        // 200 a minute: the first run left 50; the re-run costs 150 creations refused and 150 reads, 250 more than were
        // left: 75 s at least; parallel reads may each round their Retry-After up to the next whole second.
        var elapsed = run.Clock.GetUtcNow() - start;
        Assert.InRange(elapsed, TimeSpan.FromSeconds(75), TimeSpan.FromSeconds(78));
    }

    [Fact]
    public async Task ThrottledPastMaxThrottledWait_FailsEachDeviceOfThatCall_WithIoTHubThrottled_NeverSilently()
    {
        await using var run = new PacedRun(IoTHubTier.S1, 1, maxThrottledWait: TimeSpan.FromSeconds(30));

        var outcomes = await run.RunAsync(new DeviceRegistryWriterOptions { MaxParallelCalls = 1 }, Devices("limit", 250));

        Assert.Equal(250, outcomes.Count);
        Assert.All(outcomes.Take(100), o => Assert.Equal(RegistryAction.Created, o.Action));
        Assert.All(outcomes.Skip(100).Take(100), o =>
        {
            Assert.Equal(RegistryAction.Failed, o.Action);
            var error = Assert.IsType<IoTHubMqttException>(o.Error, exactMatch: false);
            Assert.Equal("IoTHubThrottled", error.ErrorId);
            Assert.Contains("still throttled", error.Message, StringComparison.Ordinal);
        });
        Assert.All(outcomes.Skip(200), o => Assert.Equal(RegistryAction.Created, o.Action));
    }
}
