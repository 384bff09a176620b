namespace IoTHubMqtt.Core.Esp32;

/// <summary>A connected board, as detected through its bootloader.</summary>
public sealed record Esp32DeviceInfo
{
    public required string Port { get; init; }
    public required Esp32Chip Chip { get; init; }
    public required string ChipName { get; init; }
    public string? Revision { get; init; }
    public required IReadOnlyList<string> Features { get; init; }
    public required string MacAddress { get; init; }
    public required uint FlashId { get; init; }
    public required long FlashSize { get; init; }

    /// <summary>False when the flash's JEDEC id does not tell its size (FlashSize is then a safe bound, or what was given).</summary>
    public bool FlashSizeDetected { get; init; } = true;

    public string? UsbId { get; init; }

    public string FlashSizeText => Esp32Format.Size(FlashSize);

    public override string ToString() => $"{ChipName} on {Port} ({MacAddress}, {FlashSizeText} flash)";
}

/// <summary>What a region holds, which decides how it is checked before anything is written.</summary>
public enum Esp32RegionKind
{
    /// <summary>Bytes written as given (a filesystem or NVS image); only its offset and size are checked.</summary>
    Raw,

    /// <summary>An ESP application or bootloader image: magic, segments, checksum, SHA-256 and chip id are checked.</summary>
    Image,

    /// <summary>An ESP-IDF partition table, checked as ESP-IDF checks it.</summary>
    PartitionTable,
}

/// <summary>One region to write: a name for messages, a flash offset and the bytes.</summary>
public sealed record Esp32FlashRegion(string Name, uint Offset, byte[] Data)
{
    public Esp32RegionKind Kind { get; init; } = Esp32RegionKind.Raw;

    public override string ToString() => $"{Name} @ 0x{Offset:X} ({Data.Length} bytes)";
}

public enum Esp32RegionStatus
{
    Written,
    Skipped,
}

/// <summary>What happened to one region. Only produced for a region whose flash MD5 matched the image.</summary>
public sealed record Esp32RegionResult
{
    public required string Port { get; init; }
    public required string Name { get; init; }
    public required uint Offset { get; init; }
    public required int Length { get; init; }
    public required Esp32RegionStatus Status { get; init; }
    public required string Md5 { get; init; }
    public required bool Verified { get; init; }
    public long WireBytes { get; init; }
    public TimeSpan Duration { get; init; }
    public int Attempts { get; init; }

    public string OffsetHex => $"0x{Offset:X}";

    public double BytesPerSecond => Duration > TimeSpan.Zero ? Length / Duration.TotalSeconds : 0;
}

/// <summary>Progress of a flash operation (for Write-Progress).</summary>
public sealed record Esp32FlashProgress(string Activity, string Region, uint Offset, long Done, long Total, double BytesPerSecond)
{
    public int Percent => Total <= 0 ? 100 : (int)Math.Clamp(Done * 100 / Total, 0, 100);
}

internal static class Esp32Format
{
    public static string Size(long bytes) => bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? $"{bytes >> 20}MB" : bytes >= 1024 ? $"{bytes / 1024}KB" : $"{bytes}B";
}
