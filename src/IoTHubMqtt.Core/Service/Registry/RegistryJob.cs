using System.Text.Json.Nodes;

namespace IoTHubMqtt.Core.Service.Registry;

/// <summary>
/// An import or export job as the hub reports it (JobProperties): id, type, status (enqueued, running, completed, failed,
/// cancelled), progress in percent, times and the failure reason. The container URIs are not kept: they carry a SAS.
/// See https://learn.microsoft.com/rest/api/iothub/service/jobs/get-import-export-job
/// </summary>
public sealed record RegistryJob
{
    public required string JobId { get; init; }

    /// <summary>import or export.</summary>
    public required string Type { get; init; }

    /// <summary>unknown, enqueued, running, completed, failed or cancelled.</summary>
    public required string Status { get; init; }

    /// <summary>Percent done, 0 to 100.</summary>
    public int Progress { get; init; }

    public DateTimeOffset? StartTime { get; init; }

    public DateTimeOffset? EndTime { get; init; }

    public string? FailureReason { get; init; }

    /// <summary>The blob the job read (import) or wrote (export), e.g. devices.txt.</summary>
    public string? BlobName { get; init; }

    /// <summary>Whether the job has ended (completed, failed or cancelled).</summary>
    public bool IsFinished => Status is "completed" or "failed" or "cancelled";

    internal static RegistryJob FromJson(JsonObject json)
    {
        var type = ServiceDevice.Text(json, "type") ?? "unknown";
        return new RegistryJob
        {
            JobId = ServiceDevice.Text(json, "jobId") ?? "",
            Type = type,
            Status = ServiceDevice.Text(json, "status")?.ToLowerInvariant() ?? "unknown",
            Progress = json["progress"] is JsonValue p && p.TryGetValue<int>(out var progress) ? Math.Clamp(progress, 0, 100) : 0,
            StartTime = ServiceDevice.Time(ServiceDevice.Text(json, "startTimeUtc")),
            EndTime = ServiceDevice.Time(ServiceDevice.Text(json, "endTimeUtc")),
            FailureReason = ServiceDevice.Text(json, "failureReason"),
            BlobName = ServiceDevice.Text(json, type == "export" ? "outputBlobName" : "inputBlobName"),
        };
    }

    public override string ToString() => $"{Type} job {JobId}: {Status} ({Progress} %)";
}
