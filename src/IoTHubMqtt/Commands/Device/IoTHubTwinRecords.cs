using IoTHubMqtt.Core.Mqtt;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Device;

/// <summary>The device twin as Get-IoTHubTwin returns it; Desired and Reported are objects like ConvertFrom-Json's.</summary>
public sealed class IoTHubDeviceTwin
{
    internal IoTHubDeviceTwin(string deviceId, DeviceTwin twin)
    {
        DeviceId = deviceId;
        DesiredVersion = twin.DesiredVersion;
        ReportedVersion = twin.ReportedVersion;
        Desired = PowerShellJson.ToPowerShell(twin.Desired);
        Reported = PowerShellJson.ToPowerShell(twin.Reported);
        Json = $"{{\"desired\":{twin.Desired.ToJsonString()},\"reported\":{twin.Reported.ToJsonString()}}}";
    }

    public string DeviceId { get; }

    public long DesiredVersion { get; }

    public long ReportedVersion { get; }

    public object? Desired { get; }

    public object? Reported { get; }

    /// <summary>The twin as the hub sent it.</summary>
    public string Json { get; }

    public override string ToString() => $"{DeviceId} twin (desired v{DesiredVersion}, reported v{ReportedVersion})";
}

/// <summary>The result of Update-IoTHubTwin.</summary>
public sealed class IoTHubTwinUpdate
{
    public required string DeviceId { get; init; }

    public required long ReportedVersion { get; init; }

    public required string Patch { get; init; }

    public override string ToString() => $"{DeviceId} reported v{ReportedVersion}";
}

/// <summary>A desired-properties change as Wait-IoTHubDesiredProperty returns it.</summary>
public sealed class IoTHubDesiredPropertyChange
{
    internal IoTHubDesiredPropertyChange(string deviceId, DesiredPropertiesUpdate update)
    {
        DeviceId = deviceId;
        Version = update.Version;
        ReceivedAt = update.ReceivedAt;
        Patch = PowerShellJson.ToPowerShell(update.Patch);
        Names = update.Patch.Select(p => p.Key).Where(k => !k.StartsWith('$')).ToArray();
        Json = update.Patch.ToJsonString();
    }

    public string DeviceId { get; }

    public long Version { get; }

    public DateTimeOffset ReceivedAt { get; }

    /// <summary>The top-level property names the patch changes.</summary>
    public string[] Names { get; }

    public object? Patch { get; }

    public string Json { get; }

    public override string ToString() => $"{DeviceId} desired v{Version}: {string.Join(", ", Names)}";
}
