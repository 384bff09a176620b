using System.Text.Json.Nodes;

namespace IoTHubMqtt.Emulator.Hub;

/// <summary>How a device proves who it is.</summary>
internal enum DeviceAuthType
{
    Sas,
    SelfSigned,
}

/// <summary>One registered device: identity, keys and twin. Mutated only under the registry's lock.</summary>
internal sealed class DeviceIdentity
{
    public required string DeviceId { get; init; }

    /// <summary>Set for a module identity of <see cref="DeviceId"/>.</summary>
    public string? ModuleId { get; init; }

    /// <summary>How the hub and MQTT client ids name it: <c>{deviceId}</c> or <c>{deviceId}/{moduleId}</c>.</summary>
    public string Key => ModuleId is null ? DeviceId : $"{DeviceId}/{ModuleId}";

    public string GenerationId { get; set; } = Guid.NewGuid().ToString("N")[..18];

    public string ETag { get; set; } = NewETag();

    public bool Enabled { get; set; } = true;

    public string? StatusReason { get; set; }

    public DeviceAuthType AuthType { get; set; }

    public string? PrimaryKey { get; set; }

    public string? SecondaryKey { get; set; }

    public string? PrimaryThumbprint { get; set; }

    public string? SecondaryThumbprint { get; set; }

    public DateTime StatusUpdatedTime { get; set; }

    public DateTime LastActivityTime { get; set; } = DateTime.MinValue;

    public DateTime ConnectionStateUpdatedTime { get; set; } = DateTime.MinValue;

    public bool Connected { get; set; }

    public JsonObject Desired { get; set; } = [];

    public JsonObject Reported { get; set; } = [];

    public JsonObject Tags { get; set; } = [];

    /// <summary>The desired section's <c>$metadata</c> (see <see cref="TwinMetadata"/>).</summary>
    public JsonObject DesiredMetadata { get; set; } = TwinMetadata.Empty();

    /// <summary>The reported section's <c>$metadata</c>.</summary>
    public JsonObject ReportedMetadata { get; set; } = TwinMetadata.Empty();

    public long DesiredVersion { get; set; } = 1;

    public long ReportedVersion { get; set; } = 1;

    public long TwinVersion { get; set; } = 1;

    public string TwinETag { get; set; } = NewETag();

    /// <summary>A copy to change and put in place of this one (the JSON sections are shared: changes replace them whole).</summary>
    public DeviceIdentity Copy() => new()
    {
        DeviceId = DeviceId,
        ModuleId = ModuleId,
        GenerationId = GenerationId,
        ETag = ETag,
        Enabled = Enabled,
        StatusReason = StatusReason,
        AuthType = AuthType,
        PrimaryKey = PrimaryKey,
        SecondaryKey = SecondaryKey,
        PrimaryThumbprint = PrimaryThumbprint,
        SecondaryThumbprint = SecondaryThumbprint,
        StatusUpdatedTime = StatusUpdatedTime,
        LastActivityTime = LastActivityTime,
        ConnectionStateUpdatedTime = ConnectionStateUpdatedTime,
        Connected = Connected,
        Desired = Desired,
        Reported = Reported,
        DesiredMetadata = DesiredMetadata,
        ReportedMetadata = ReportedMetadata,
        Tags = Tags,
        DesiredVersion = DesiredVersion,
        ReportedVersion = ReportedVersion,
        TwinVersion = TwinVersion,
        TwinETag = TwinETag,
    };

    public static string NewETag() => Convert.ToBase64String(Guid.NewGuid().ToByteArray())[..12];

    public override string ToString() => ModuleId is null ? $"Device {DeviceId}" : $"Module {DeviceId}/{ModuleId}";
}
