using IoTHubMqtt.Module.Tests.Harness;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Module.Tests.Telemetry;

/// <summary>
/// Receive-IoTHubTelemetry at fleet scale: checkpoints (a file; blobs in Azurite) so a reader resumes where it stopped,
/// readers that share the partitions of a consumer group and hand them over without a message read twice, the
/// JavaScript Event Hubs processor reading on from the cmdlet's blob checkpoints and back, -StartTime, partition subsets,
/// consumer groups with positions of their own, progress for -Count.
/// </summary>
public sealed class TelemetryCheckpointTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>, IDisposable
{
    private readonly PowerShellSession ps = new();
    private readonly string folder = Directory.CreateTempSubdirectory("iothubmqtt-checkpoints-").FullName;

    public void Dispose()
    {
        ps.Invoke("if ($hub) { Disconnect-IoTHub -ErrorAction SilentlyContinue; $hub | Stop-IoTHubEmulator -Confirm:$false }");
        ps.Dispose();
        Directory.Delete(folder, recursive: true);
    }

    /// <summary>Starts an emulator, and <paramref name="devices"/> devices that each send <paramref name="perDevice"/> messages 'd{i}-{n}'.</summary>
    private void StartAndSend(int devices, int perDevice)
    {
        var result = ps.Invoke("""
            $hub = Start-IoTHubEmulator -ServiceRequestsPerSecond 0
            $hub | Connect-IoTHubService | Out-Null
            foreach ($i in 1..$devices) {
                $d = New-IoTHubDevice -DeviceId ("d$i-" + [guid]::NewGuid().ToString('N').Substring(0, 6))
                $c = Connect-IoTHub -ConnectionString $d.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
                foreach ($n in 1..$perDevice) { Send-IoTHubMessage -Connection $c -Body "d$i-$n" | Out-Null }
                Disconnect-IoTHub -Connection $c
            }
            """, PowerShellSession.Vars(("devices", devices), ("perDevice", perDevice)), TimeSpan.FromMinutes(2));
        Assert.Empty(result.AllErrors);
    }

    private List<string> Read(string arguments, bool errorsExpected = false)
    {
        var result = ps.Invoke($"Receive-IoTHubTelemetry {arguments} | ForEach-Object {{ $_.Body }}", timeout: TimeSpan.FromMinutes(2));
        if (!errorsExpected)
        {
            Assert.True(!result.AllErrors.Any(), string.Join("; ", result.AllErrors));
        }

        return result.Output.Select(o => o.ToString()).ToList();
    }

    [Fact]
    public void CheckpointFile_ReadsInParts_EveryMessageOnceAcrossRestarts_AndEachConsumerGroupHasItsOwn()
    {
        StartAndSend(3, 4);
        var file = Path.Combine(folder, "readers.json");

        var first = Read($"-Checkpoint '{file}' -Count 5 -Timeout 30");
        var second = Read($"-Checkpoint '{file}' -Count 7 -Timeout 30");
        var third = Read($"-Checkpoint '{file}' -Timeout 2");

        Assert.Equal(5, first.Count);
        Assert.Equal(7, second.Count);
        Assert.Empty(third);
        var all = first.Concat(second).ToList();
        Assert.Equal(12, all.Distinct().Count());
        foreach (var device in new[] { "d1", "d2", "d3" })
        {
            Assert.Equal([$"{device}-1", $"{device}-2", $"{device}-3", $"{device}-4"], all.Where(b => b.StartsWith(device + "-", StringComparison.Ordinal)));
        }

        // Another consumer group starts from its own (empty) checkpoint.
        Assert.Equal(12, Read($"-Checkpoint '{file}' -ConsumerGroup analytics -Count 12 -Timeout 30").Count);
        Assert.Empty(Read($"-Checkpoint '{file}' -ConsumerGroup analytics -Timeout 2"));
    }

    [Fact]
    public void StartTime_ReadsOnlyWhatWasEnqueuedFromThen_AndConflictsWithStartPosition()
    {
        StartAndSend(1, 4);
        var times = ps.Invoke("Receive-IoTHubTelemetry -Count 4 -Timeout 30 | ForEach-Object { $_.EnqueuedTime }").Output.Select(o => (DateTimeOffset)o.BaseObject).ToList();
        var from = times[2];
        var expected = times.Count(t => t.ToUnixTimeMilliseconds() >= from.ToUnixTimeMilliseconds());

        var result = ps.Invoke("@(Receive-IoTHubTelemetry -StartTime $from -Timeout 3).Count", PowerShellSession.Vars(("from", from)));
        Assert.Equal(expected, (int)result.Output.Single().BaseObject);

        var conflict = ps.Invoke("Receive-IoTHubTelemetry -StartTime $from -StartPosition End -Timeout 1", PowerShellSession.Vars(("from", from)));
        Assert.StartsWith("TelemetryStartConflict", conflict.AllErrors.Single().FullyQualifiedErrorId, StringComparison.Ordinal);
    }

    [Fact]
    public void PartitionId_ReadsOnlyThosePartitions_AnUnknownOneIsPartitionNotFound()
    {
        StartAndSend(6, 1);
        var byPartition = ps.Invoke("Receive-IoTHubTelemetry -Count 6 -Timeout 30 | ForEach-Object { $_.PartitionId }").Output.Select(o => o.ToString()).ToList();

        var low = ps.Invoke("@(Receive-IoTHubTelemetry -PartitionId 0, 1 -Timeout 3 | ForEach-Object { $_.PartitionId })").Output.Select(o => o.ToString()).ToList();
        Assert.Equal(byPartition.Count(p => p is "0" or "1"), low.Count);
        Assert.All(low, p => Assert.Contains(p, new[] { "0", "1" }));

        var unknown = ps.Invoke("Receive-IoTHubTelemetry -PartitionId 9 -Timeout 1");
        Assert.StartsWith("PartitionNotFound", unknown.AllErrors.Single().FullyQualifiedErrorId, StringComparison.Ordinal);
    }

    [Fact]
    public void Count_WritesProgress_UntilDone()
    {
        StartAndSend(1, 3);

        var result = ps.Invoke("Receive-IoTHubTelemetry -Count 3 -Timeout 30 | Out-Null");

        Assert.Empty(result.AllErrors);
        Assert.Contains(result.Progress, p => p.StatusDescription == "3 of 3 message(s)" && p.PercentComplete == 100);
        Assert.Equal(System.Management.Automation.ProgressRecordType.Completed, result.Progress[^1].RecordType);
    }

    [Fact]
    public void BlobCheckpoints_TwoReadersShareThePartitionsWhileDevicesSend_AndAcrossRestarts_NothingLostOrRepeated()
    {
        Assert.SkipWhen(azurite.Missing is not null, azurite.Missing ?? "");
        ConnectDevices(TelemetryPartitions.DeviceIdsCovering("share", 1));
        var container = "checkpoints-" + Guid.NewGuid().ToString("N")[..8];
        var common = $"-StorageConnectionString '{azurite.ConnectionString}' -Checkpoint {container} -LoadBalancingInterval 00:00:01";
        var deliveries = new Deliveries();
        var sent = new List<string>();

        // Two readers start together; devices send to every partition, round after round, until both readers have read
        // (the partitions are shared), and one round more.
        using (var readers = new Readers(this, common, deliveries))
        {
            for (var round = 1; round <= 40 && deliveries.Readers.Count < 2; round++)
            {
                sent.AddRange(SendRound($"a{round}"));
                Assert.True(deliveries.WaitForCount(sent.Count, TimeSpan.FromMinutes(1)), $"{deliveries.Count} of {sent.Count} read: {deliveries}");
            }

            sent.AddRange(SendRound("a-last"));
            Assert.True(deliveries.WaitForCount(sent.Count, TimeSpan.FromMinutes(1)), $"{deliveries.Count} of {sent.Count} read: {deliveries}");
            readers.StopAndCheck();
        }

        Assert.Equal(2, deliveries.Readers.Count);
        Assert.Equal(sent.Order(StringComparer.Ordinal), deliveries.Bodies.Order(StringComparer.Ordinal));

        // Messages while no reader runs; both readers start again (each claims what it can, then they balance) while
        // devices go on sending: every message once.
        sent.AddRange(SendRound("b0"));
        using (var readers = new Readers(this, common, deliveries))
        {
            Assert.True(deliveries.WaitForCount(sent.Count, TimeSpan.FromMinutes(1)), $"{deliveries.Count} of {sent.Count} read: {deliveries}");
            for (var round = 1; round <= 3; round++)
            {
                sent.AddRange(SendRound($"b{round}"));
                Assert.True(deliveries.WaitForCount(sent.Count, TimeSpan.FromMinutes(1)), $"{deliveries.Count} of {sent.Count} read: {deliveries}");
            }

            readers.StopAndCheck();
        }

        Assert.Equal(sent.Order(StringComparer.Ordinal), deliveries.Bodies.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task BlobCheckpoints_TheJavaScriptEventHubsProcessorTakesOverFromTheCmdlet_AndTheCmdletFromIt()
    {
        Assert.SkipWhen(azurite.Missing is not null, azurite.Missing ?? "");
        Assert.SkipWhen(NodeInterop.Missing("@azure/eventhubs-checkpointstore-blob") is not null, NodeInterop.Missing("@azure/eventhubs-checkpointstore-blob") ?? "");
        ConnectDevices(TelemetryPartitions.DeviceIdsCovering("js", 1));
        var container = "handover-" + Guid.NewGuid().ToString("N")[..8];
        var checkpoint = $"-StorageConnectionString '{azurite.ConnectionString}' -Checkpoint {container}";
        var sent = SendRound("m1").Concat(SendRound("m2")).ToList();

        // The cmdlet reads 3 of the 8 and stops (its checkpoints written, its partitions given up) ...
        var first = Read($"{checkpoint} -Count 3 -Timeout 60");

        // ... the Event Hubs processor for JavaScript (blob checkpoint store) reads on from those checkpoints ...
        var hub = ps.Invoke("$hub.EventHubConnectionString; $hub.CaCertificatePath").Output.Select(o => o.ToString()).ToList();
        using var script = NodeInterop.Start("eventhubs.js", new Dictionary<string, string> { ["NODE_EXTRA_CA_CERTS"] = hub[1] },
            "checkpoint", hub[0], "$Default", azurite.ConnectionString, container, "5");
        var read = await script.WaitForAsync("events", TimeSpan.FromMinutes(2));
        var second = read["events"]!.AsArray().Select(e => (string)e!["body"]!).ToList();

        Assert.Equal(sent.Order(StringComparer.Ordinal), first.Concat(second).Order(StringComparer.Ordinal));

        // ... and the cmdlet reads on from the processor's checkpoints: only what came since.
        var later = SendRound("m3");
        Assert.Equal(later.Order(StringComparer.Ordinal), Read($"{checkpoint} -Count 4 -Timeout 60").Order(StringComparer.Ordinal));
        Assert.Empty(Read($"{checkpoint} -Timeout 3"));
    }

    /// <summary>Creates the devices and keeps a connection of each in $devices.</summary>
    private void ConnectDevices(IReadOnlyList<string> ids)
    {
        var result = ps.Invoke("""
            $hub = Start-IoTHubEmulator -ServiceRequestsPerSecond 0
            $hub | Connect-IoTHubService | Out-Null
            $devices = foreach ($id in $ids) {
                $d = New-IoTHubDevice -DeviceId $id
                Connect-IoTHub -ConnectionString $d.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
            }
            """, PowerShellSession.Vars(("ids", ids.ToArray())), TimeSpan.FromMinutes(2));
        Assert.Empty(result.AllErrors);
    }

    /// <summary>One message '{tag}-{device}' from each device; returns the bodies.</summary>
    private List<string> SendRound(string tag)
    {
        var result = ps.Invoke("foreach ($c in $devices) { $body = \"$tag-$($c.DeviceId)\"; Send-IoTHubMessage -Connection $c -Body $body | Out-Null; $body }",
            PowerShellSession.Vars(("tag", tag)));
        Assert.Empty(result.AllErrors);
        return result.Output.Select(o => o.ToString()).ToList();
    }

    /// <summary>Two readers with the same arguments, each in a runspace of its own, reading until stopped (Ctrl+C).</summary>
    private sealed class Readers : IDisposable
    {
        private readonly List<PowerShellSession> sessions = [];
        private readonly List<Task<PowerShellResult>> runs = [];

        public Readers(TelemetryCheckpointTests test, string arguments, Deliveries deliveries)
        {
            var service = test.ps.Invoke("$hub.OwnerConnectionString; $hub.HttpsPort; $hub.CaCertificatePath").Output.Select(o => o.ToString()).ToList();
            for (var i = 1; i <= 2; i++)
            {
                var session = new PowerShellSession();
                var reader = i;
                sessions.Add(session);
                runs.Add(Task.Run(() => session.Invoke(
                    $"Receive-IoTHubTelemetry -ConnectionString '{service[0]}' -Port {service[1]} -CaCertificatePath '{service[2]}' {arguments} -Timeout 0 | ForEach-Object {{ $deliveries.Add($reader, $_.PartitionId, $_.Body) }}",
                    PowerShellSession.Vars(("deliveries", deliveries), ("reader", reader)), TimeSpan.FromMinutes(5))));
            }
        }

        /// <summary>Presses Ctrl+C in both (each writes its checkpoints and gives its partitions up); only PipelineStopped errors.</summary>
        public void StopAndCheck()
        {
            Assert.All(runs, r => Assert.False(r.IsCompleted, r.IsCompleted ? string.Join("; ", r.Result.AllErrors) : ""));
            foreach (var session in sessions)
            {
                session.Stop();
            }

            foreach (var run in runs)
            {
                var result = run.GetAwaiter().GetResult();
                Assert.True(result.AllErrors.All(e => e.FullyQualifiedErrorId.StartsWith("PipelineStopped", StringComparison.Ordinal)), string.Join("; ", result.AllErrors));
            }
        }

        public void Dispose()
        {
            foreach (var session in sessions)
            {
                session.Stop();
            }

            Task.WaitAll([.. runs], TimeSpan.FromMinutes(1));
            foreach (var session in sessions)
            {
                session.Dispose();
            }
        }
    }
}

/// <summary>What the readers of a test delivered, by reader and partition; a test waits on it for a count.</summary>
public sealed class Deliveries
{
    private readonly object gate = new();
    private readonly List<(int Reader, string Partition, string Body)> items = [];

    public void Add(int reader, string partition, string body)
    {
        lock (gate)
        {
            items.Add((reader, partition, body));
            Monitor.PulseAll(gate);
        }
    }

    public int Count
    {
        get
        {
            lock (gate)
            {
                return items.Count;
            }
        }
    }

    public IReadOnlyList<string> Bodies
    {
        get
        {
            lock (gate)
            {
                return items.Select(i => i.Body).ToList();
            }
        }
    }

    /// <summary>The readers that delivered at least one message.</summary>
    public IReadOnlySet<int> Readers
    {
        get
        {
            lock (gate)
            {
                return items.Select(i => i.Reader).ToHashSet();
            }
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> were delivered; false after <paramref name="timeout"/>.</summary>
    public bool WaitForCount(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (gate)
        {
            while (items.Count < count)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Monitor.Wait(gate, left))
                {
                    return items.Count >= count;
                }
            }

            return true;
        }
    }

    public override string ToString()
    {
        lock (gate)
        {
            return string.Join(", ", items.Select(i => $"{i.Reader}:{i.Partition}:{i.Body}"));
        }
    }
}
