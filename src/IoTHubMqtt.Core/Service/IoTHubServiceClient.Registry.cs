using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service.Registry;

namespace IoTHubMqtt.Core.Service;

/// <summary>The registry at fleet scale: bulk registry calls of up to 100 devices, and import/export jobs.</summary>
public sealed partial class IoTHubServiceClient
{
    /// <summary>The most devices one bulk registry call may carry.</summary>
    public const int MaxBulkDevices = 100;

    /// <summary>
    /// Creates, updates or removes up to 100 devices in one call (<c>POST /devices</c>, Bulk Registry - Update Registry) and
    /// returns the hub's per-device errors. The hub counts each device against the identity registry throttle; a throttled
    /// call is waited out (see <see cref="IoTHubServiceOptions.MaxThrottledWait"/>).
    /// See https://learn.microsoft.com/rest/api/iothub/service/bulk-registry/update-registry
    /// </summary>
    public async Task<BulkRegistryResult> BulkRegistryAsync(IReadOnlyList<RegistryOperation> operations, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        if (operations.Count is 0 or > MaxBulkDevices)
        {
            throw new IoTHubMqttException(ErrorIds.TooManyDevices,
                $"A bulk registry call carries 1 to {MaxBulkDevices} devices, not {operations.Count}.", null, operations.Count);
        }

        var body = new JsonArray(operations.Select(o => (JsonNode)ExportImportDeviceJson.Write(o)).ToArray());
        var response = await SendAsync(HttpMethod.Post, "devices", body, null, $"Bulk registry ({operations.Count} devices)", null, cancellationToken).ConfigureAwait(false);
        var json = ObjectOf(response);
        var errors = (json["errors"] as JsonArray ?? []).OfType<JsonObject>().Select(e => new DeviceRegistryError(
            ServiceDevice.Text(e, "deviceId") ?? "",
            HubErrorCodes.Read(e["errorCode"]),
            ServiceDevice.Text(e, "errorStatus"),
            ServiceDevice.Text(e, "operation"),
            ServiceDevice.Text(e, "moduleId"))).ToList();
        var warnings = (json["warnings"] as JsonArray ?? []).OfType<JsonObject>().Select(w => new DeviceRegistryWarning(
            ServiceDevice.Text(w, "deviceId") ?? "",
            ServiceDevice.Text(w, "warningCode") ?? "Unknown",
            ServiceDevice.Text(w, "warningStatus"))).ToList();
        var successful = json["isSuccessful"] is JsonValue v && v.TryGetValue<bool>(out var ok) ? ok : errors.Count == 0;
        return new BulkRegistryResult(successful, errors, warnings);
    }

    /// <summary>
    /// Starts an import job (<c>POST /jobs/create</c>, type import): the hub reads <paramref name="inputBlobName"/>
    /// (devices.txt by default) from the input container and writes importErrors.log to the output container.
    /// Both URIs carry a SAS (read on the input; read, write and delete on the output).
    /// </summary>
    public Task<RegistryJob> StartImportJobAsync(Uri inputContainerSasUri, Uri outputContainerSasUri, string? inputBlobName = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputContainerSasUri);
        ArgumentNullException.ThrowIfNull(outputContainerSasUri);
        var body = new JsonObject
        {
            ["type"] = "import",
            ["inputBlobContainerUri"] = inputContainerSasUri.AbsoluteUri,
            ["outputBlobContainerUri"] = outputContainerSasUri.AbsoluteUri,
        };
        if (inputBlobName is not null)
        {
            body["inputBlobName"] = inputBlobName;
        }

        return CreateJobAsync(body, "Start import job", cancellationToken);
    }

    /// <summary>
    /// Starts an export job (<c>POST /jobs/create</c>, type export): the hub writes every device with its twin, one per
    /// line, to <paramref name="outputBlobName"/> (devices.txt by default) in the container; keys are null with
    /// <paramref name="excludeKeys"/>.
    /// </summary>
    public Task<RegistryJob> StartExportJobAsync(Uri outputContainerSasUri, bool excludeKeys, string? outputBlobName = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(outputContainerSasUri);
        var body = new JsonObject
        {
            ["type"] = "export",
            ["outputBlobContainerUri"] = outputContainerSasUri.AbsoluteUri,
            ["excludeKeysInExport"] = excludeKeys,
        };
        if (outputBlobName is not null)
        {
            body["outputBlobName"] = outputBlobName;
        }

        return CreateJobAsync(body, "Start export job", cancellationToken);
    }

    /// <summary>The job's current state (<c>GET /jobs/{id}</c>).</summary>
    public async Task<RegistryJob> GetJobAsync(string jobId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(jobId);
        var response = await SendAsync(HttpMethod.Get, "jobs/" + Uri.EscapeDataString(jobId), null, null, "Get job", jobId, cancellationToken).ConfigureAwait(false);
        return RegistryJob.FromJson(ObjectOf(response));
    }

    /// <summary>Cancels a job that has not finished (<c>DELETE /jobs/{id}</c>).</summary>
    public async Task<RegistryJob> CancelJobAsync(string jobId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(jobId);
        var response = await SendAsync(HttpMethod.Delete, "jobs/" + Uri.EscapeDataString(jobId), null, null, "Cancel job", jobId, cancellationToken).ConfigureAwait(false);
        return string.IsNullOrWhiteSpace(response.Body) ? await GetJobAsync(jobId, cancellationToken).ConfigureAwait(false) : RegistryJob.FromJson(ObjectOf(response));
    }

    private async Task<RegistryJob> CreateJobAsync(JsonObject body, string operation, CancellationToken cancellationToken)
    {
        var response = await SendAsync(HttpMethod.Post, "jobs/create", body, null, operation, null, cancellationToken).ConfigureAwait(false);
        return RegistryJob.FromJson(ObjectOf(response));
    }
}
