using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service.Registry;

/// <summary>Where an import or export job is: the stage (uploading, waiting for the hub, reading results), the job as last polled, devices so far.</summary>
public sealed record JobProgress(string Stage, RegistryJob? Job, long Devices);

/// <summary>What an import job did: the job, how many devices the file held, and the devices the hub reported as failed.</summary>
public sealed record ImportJobResult(RegistryJob Job, long Devices, IReadOnlyList<DeviceRegistryError> Failed, long AlreadyExisting)
{
    /// <summary>Devices the job applied (the file's devices less the failed and, for creation, the ones that already existed).</summary>
    public long Succeeded => Devices - Failed.Count - AlreadyExisting;
}

/// <summary>
/// Import and export jobs end to end: the device file written to (or read from) a blob container, the job started with
/// <c>POST /jobs/create</c>, its status polled (with progress) until it ends, and its results read back. The clock is the
/// client's <see cref="TimeProvider"/>.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-bulk-identity-mgmt
/// </summary>
public static class RegistryJobs
{
    /// <summary>The blob an import job writes its per-device errors to, in the output container.</summary>
    public const string ImportErrorsBlobName = "importErrors.log";

    private static readonly TimeSpan FirstPoll = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan MaxPoll = TimeSpan.FromSeconds(5);

    /// <summary>A blob name for one run: <c>{prefix}-{UTC time}-{random}.txt</c>.</summary>
    public static string NewBlobName(string prefix, TimeProvider time) =>
        $"{prefix}-{time.GetUtcNow().UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}-{Guid.NewGuid().ToString("N")[..8]}.txt";

    /// <summary>
    /// Uploads the device file, runs the import job and reads importErrors.log. In <see cref="RegistryImportMode.Create"/> mode a
    /// device that already exists is counted, not failed (the run is idempotent). The uploaded file is deleted afterwards.
    /// A job that fails or is cancelled is an ImportJobFailed exception with the hub's reason; Ctrl+C cancels the job on the hub.
    /// </summary>
    public static async Task<ImportJobResult> ImportAsync(IoTHubServiceClient service, DeviceFile file, DeviceBlobContainer input, DeviceBlobContainer output,
        Action<JobProgress>? progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        file.Close();
        var blobName = NewBlobName("import", service.TimeProvider);
        progress?.Invoke(new JobProgress($"Uploading {file.Count} devices to {input}/{blobName}", null, file.Count));
        await input.UploadFileAsync(blobName, file.Path, cancellationToken).ConfigureAwait(false);
        try
        {
            await output.DeleteIfExistsAsync(ImportErrorsBlobName, cancellationToken).ConfigureAwait(false);
            var job = await service.StartImportJobAsync(input.SasUri, output.SasUri, blobName, cancellationToken).ConfigureAwait(false);
            job = await WaitAsync(service, job, file.Count, progress, cancellationToken).ConfigureAwait(false);
            if (job.Status != "completed")
            {
                throw JobFailed(job, ErrorIds.ImportJobFailed, "import");
            }

            progress?.Invoke(new JobProgress("Reading the import errors", job, file.Count));
            var failed = new List<DeviceRegistryError>();
            long existing = 0;
            await foreach (var line in output.ReadLinesAsync(ImportErrorsBlobName, missingIsEmpty: true, cancellationToken).ConfigureAwait(false))
            {
                var error = ParseImportError(line);
                if (error.ErrorCode == "DeviceAlreadyExists" && file.Mode == RegistryImportMode.Create)
                {
                    existing++;
                }
                else
                {
                    failed.Add(error);
                }
            }

            return new ImportJobResult(job, file.Count, failed, existing);
        }
        finally
        {
            try
            {
                await input.DeleteIfExistsAsync(blobName, CancellationToken.None).ConfigureAwait(false);
            }
            catch (IoTHubMqttException)
            {
                // The file stays in the container; it holds what the caller gave, nothing else.
            }
        }
    }

    /// <summary>Runs an export job into the container; returns the job and the blob it wrote (devices with twins, one a line).</summary>
    public static async Task<(RegistryJob Job, string BlobName)> ExportAsync(IoTHubServiceClient service, DeviceBlobContainer output, bool excludeKeys,
        Action<JobProgress>? progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(output);
        var blobName = NewBlobName("export", service.TimeProvider);
        var job = await service.StartExportJobAsync(output.SasUri, excludeKeys, blobName, cancellationToken).ConfigureAwait(false);
        job = await WaitAsync(service, job, 0, progress, cancellationToken).ConfigureAwait(false);
        return job.Status == "completed" ? (job, job.BlobName ?? blobName) : throw JobFailed(job, ErrorIds.ExportJobFailed, "export");
    }

    /// <summary>The devices of an export file as they download.</summary>
    public static async IAsyncEnumerable<ServiceDevice> ReadExportAsync(DeviceBlobContainer container, string blobName, string hostName,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        long line = 0;
        await foreach (var text in container.ReadLinesAsync(blobName, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            yield return ExportImportDeviceJson.Read(text, hostName, ++line);
        }
    }

    /// <summary>Polls the job (every 250 ms at first, then up to every 5 s) until it ends; Ctrl+C cancels it on the hub.</summary>
    public static async Task<RegistryJob> WaitAsync(IoTHubServiceClient service, RegistryJob job, long devices, Action<JobProgress>? progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(job);
        var delay = FirstPoll;
        try
        {
            while (!job.IsFinished)
            {
                progress?.Invoke(new JobProgress($"{char.ToUpperInvariant(job.Type[0])}{job.Type[1..]} job {job.JobId} {job.Status}", job, devices));
                await Task.Delay(delay, service.TimeProvider, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(MaxPoll.Ticks, delay.Ticks * 2));
                job = await service.GetJobAsync(job.JobId, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            try
            {
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await service.CancelJobAsync(job.JobId, grace.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IoTHubMqttException or OperationCanceledException)
            {
                // The job may have ended meanwhile; the caller stopped either way.
            }

            throw;
        }

        progress?.Invoke(new JobProgress($"{char.ToUpperInvariant(job.Type[0])}{job.Type[1..]} job {job.JobId} {job.Status}", job, devices));
        return job;
    }

    private static IoTHubMqttException JobFailed(RegistryJob job, string errorId, string kind) => new(
        errorId,
        $"The {kind} job {job.JobId} ended {job.Status}{(job.FailureReason is null ? "." : ": " + job.FailureReason)}",
        job.Status == "cancelled" ? "The job was cancelled on the hub; run it again." : "Check the container SAS (the hub needs read on the input, read, write and delete on the output) and the device file.",
        job.JobId);

    /// <summary>One line of importErrors.log: <c>{"deviceId":…,"errorCode":409001,"errorStatus":…}</c> (the device id may be missing).</summary>
    internal static DeviceRegistryError ParseImportError(string line)
    {
        try
        {
            if (JsonNode.Parse(line) is JsonObject json)
            {
                return new DeviceRegistryError(ServiceDevice.Text(json, "deviceId") ?? ServiceDevice.Text(json, "id") ?? "",
                    HubErrorCodes.Read(json["errorCode"]), ServiceDevice.Text(json, "errorStatus"), ServiceDevice.Text(json, "operation"), ServiceDevice.Text(json, "moduleId"));
            }
        }
        catch (JsonException)
        {
        }

        return new DeviceRegistryError("", "Unknown", line.Length > 300 ? line[..300] + "…" : line, null);
    }
}
