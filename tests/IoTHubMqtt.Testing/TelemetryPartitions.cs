namespace IoTHubMqtt.Testing;

/// <summary>Device ids whose telemetry lands in chosen partitions of the emulator's Event Hub-compatible endpoint.</summary>
public static class TelemetryPartitions
{
    /// <summary>
    /// <paramref name="perPartition"/> new device ids ({prefix}-{random}) for each of the <paramref name="partitionCount"/>
    /// partitions, in partition order, so that a test sends to every partition.
    /// </summary>
    public static IReadOnlyList<string> DeviceIdsCovering(string prefix, int perPartition, int partitionCount = 4)
    {
        var chosen = Enumerable.Range(0, partitionCount).Select(_ => new List<string>()).ToList();
        while (chosen.Any(c => c.Count < perPartition))
        {
            var id = $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";
            var partition = PartitionOf(id, partitionCount);
            if (chosen[partition].Count < perPartition)
            {
                chosen[partition].Add(id);
            }
        }

        return chosen.SelectMany(c => c).ToList();
    }

    /// <summary>The partition the emulator puts a device's telemetry in: FNV-1a of the id's characters (HubState.PartitionOf).</summary>
    public static int PartitionOf(string deviceId, int partitionCount = 4)
    {
        var hash = 2166136261u;
        foreach (var c in deviceId)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return (int)(hash % (uint)partitionCount);
    }
}
