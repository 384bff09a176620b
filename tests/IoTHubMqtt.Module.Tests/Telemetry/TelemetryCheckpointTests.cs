using IoTHubMqtt.Module.Tests.Harness;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Module.Tests.Telemetry;

/// <summary>
/// Receive-IoTHubTelemetry at fleet scale: checkpoints (a file; blobs in Azurite) so a reader resumes where it stopped,
/// -StartTime, partition subsets, consumer groups with positions of their own, progress for -Count.
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
    public void BlobCheckpoints_TwoReadersShareTheConsumerGroupAcrossRestarts_NothingLostOrRepeated()
    {
        Assert.SkipWhen(azurite.Missing is not null, azurite.Missing ?? "");
        StartAndSend(6, 3);
        var container = "checkpoints-" + Guid.NewGuid().ToString("N")[..8];
        var common = $"-StorageConnectionString '{azurite.ConnectionString}' -Checkpoint {container} -LoadBalancingInterval 00:00:01";

        // Two readers at once (two runspaces), each until the messages so far are all read; then both stop cleanly.
        var seen = new System.Collections.Concurrent.ConcurrentBag<string>();
        RunTogether(common, seen, 18);
        Assert.Equal(18, seen.Count);
        Assert.Equal(18, seen.Distinct().Count());

        // More messages while no reader runs; the restarted readers read exactly those.
        var more = ps.Invoke("""
            foreach ($i in 1..4) {
                $d = New-IoTHubDevice -DeviceId ("late$i-" + [guid]::NewGuid().ToString('N').Substring(0, 6))
                $c = Connect-IoTHub -ConnectionString $d.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
                Send-IoTHubMessage -Connection $c -Body "late$i" | Out-Null
                Disconnect-IoTHub -Connection $c
            }
            """);
        Assert.Empty(more.AllErrors);
        var after = new System.Collections.Concurrent.ConcurrentBag<string>();
        RunTogether(common, after, 4);
        Assert.Equal(["late1", "late2", "late3", "late4"], after.Order(StringComparer.Ordinal));
    }

    /// <summary>Runs two readers with <paramref name="arguments"/> in runspaces of their own until together they read <paramref name="total"/>, then stops them (Ctrl+C).</summary>
    private void RunTogether(string arguments, System.Collections.Concurrent.ConcurrentBag<string> seen, int total)
    {
        var service = ps.Invoke("$hub.OwnerConnectionString; $hub.HttpsPort; $hub.CaCertificatePath").Output.Select(o => o.ToString()).ToList();
        var readers = Enumerable.Range(0, 2).Select(_ => new PowerShellSession()).ToList();
        try
        {
            var runs = readers.Select(reader => Task.Run(() => reader.Invoke(
                $"Receive-IoTHubTelemetry -ConnectionString '{service[0]}' -Port {service[1]} -CaCertificatePath '{service[2]}' {arguments} -Timeout 0 | ForEach-Object {{ $seen.Add($_.Body) }}",
                PowerShellSession.Vars(("seen", seen)), TimeSpan.FromMinutes(3)))).ToList();
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (seen.Count < total && DateTime.UtcNow < deadline && runs.All(r => !r.IsCompleted))
            {
                Thread.Sleep(50);
            }

            foreach (var reader in readers)
            {
                reader.Stop();
            }

            foreach (var run in runs)
            {
                var result = run.GetAwaiter().GetResult();
                Assert.True(result.AllErrors.All(e => e.FullyQualifiedErrorId.StartsWith("PipelineStopped", StringComparison.Ordinal)), string.Join("; ", result.AllErrors));
            }
        }
        finally
        {
            foreach (var reader in readers)
            {
                reader.Dispose();
            }
        }
    }
}
