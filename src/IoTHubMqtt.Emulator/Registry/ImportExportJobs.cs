using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Emulator.Http;
using IoTHubMqtt.Emulator.Tiers;

namespace IoTHubMqtt.Emulator.Registry;

/// <summary>
/// The hub's import and export jobs: <c>POST /jobs/create</c> (type import or export, blob container SAS URIs, optional
/// inputBlobName / outputBlobName, excludeKeysInExport), <c>GET /jobs/{id}</c>, <c>GET /jobs</c> and <c>DELETE /jobs/{id}</c>
/// (cancel). A job runs in the background against real blob storage through the Azure Storage blob client: an import reads
/// the device file (devices.txt by default; one ExportImportDevice a line, importMode createOrUpdate when a line names
/// none) and writes importErrors.log to the output container (empty when nothing failed); an export writes every device
/// with its twin, one a line (devices.txt by default). One import or export job runs at a time, as on the hub; another is
/// answered 429 ThrottlingMaxActiveJobCountExceeded. Jobs are kept in memory (not across restarts).
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-bulk-identity-mgmt
/// </summary>
internal sealed class ImportExportJobs(HubState hub, TimeProvider time, EmulatorLog log) : IDisposable
{
    private const int History = 100;
    private readonly object gate = new();
    private readonly List<Job> jobs = [];

    private sealed class Job
    {
        public required string Id { get; init; }

        public required string Type { get; init; }

        public required JsonObject Request { get; init; }

        public string Status { get; set; } = "enqueued";

        public int Progress { get; set; }

        public DateTimeOffset StartTime { get; init; }

        public DateTimeOffset? EndTime { get; set; }

        public string? FailureReason { get; set; }

        public CancellationTokenSource Cancel { get; } = new();

        public bool IsActive => Status is "enqueued" or "running";
    }

    /// <summary>Jobs that have not ended.</summary>
    public int ActiveCount
    {
        get
        {
            lock (gate)
            {
                return jobs.Count(j => j.IsActive);
            }
        }
    }

    public HttpResponse Create(JsonObject body)
    {
        var type = (Text(body, "type") ?? "").ToLowerInvariant() switch
        {
            "import" or "importdevices" => "import",
            "export" or "exportdevices" => "export",
            var other => throw new HubError(400, 400004, "ArgumentInvalid", $"The job type '{other}' is not import or export (the emulator runs those two)."),
        };
        if (Text(body, "storageAuthenticationType") is { } auth && !auth.Equals("keyBased", StringComparison.OrdinalIgnoreCase))
        {
            throw new HubError(400, 400004, "ArgumentInvalid", "The emulator reaches blob storage with the container SAS URIs only (storageAuthenticationType keyBased).");
        }

        Uri Container(string name)
        {
            var text = Text(body, name) ?? throw new HubError(400, 400004, "ArgumentInvalid", $"{name} is required.");
            return Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
                ? uri
                : throw new HubError(400, 400004, "ArgumentInvalid", $"{name} is not an absolute http(s) URI.");
        }

        if (type == "import")
        {
            Container("inputBlobContainerUri");
        }

        Container("outputBlobContainerUri");
        var job = new Job { Id = Guid.NewGuid().ToString(), Type = type, Request = (JsonObject)body.DeepClone(), StartTime = time.GetUtcNow() };
        lock (gate)
        {
            if (jobs.Count(j => j.IsActive) >= TierQuotas.MaxConcurrentImportExportJobs)
            {
                throw new HubError(429, 429004, "ThrottlingMaxActiveJobCountExceeded", "Another import or export job is running; only one may run at a time.") { RetryAfterSeconds = 5 };
            }

            jobs.Add(job);
            if (jobs.Count > History)
            {
                jobs.RemoveAll(j => !j.IsActive && jobs.IndexOf(j) < jobs.Count - History);
            }
        }

        log.Information($"{char.ToUpperInvariant(type[0])}{type[1..]} job {job.Id} created.");
        // The answer is the job as created (the hub answers "enqueued"), written before it can start running.
        JsonObject created;
        lock (gate)
        {
            created = ToJson(job);
        }

        _ = Task.Run(() => RunAsync(job));
        return HttpResponse.Json(200, created);
    }

    public HttpResponse Get(string jobId)
    {
        lock (gate)
        {
            return HttpResponse.Json(200, ToJson(Find(jobId)));
        }
    }

    public HttpResponse List()
    {
        lock (gate)
        {
            return HttpResponse.Json(200, new JsonArray(jobs.Select(j => (JsonNode)ToJson(j)).ToArray()));
        }
    }

    public HttpResponse Cancel(string jobId)
    {
        Job job;
        lock (gate)
        {
            job = Find(jobId);
            if (job.IsActive)
            {
                job.Status = "cancelled";
                job.EndTime = time.GetUtcNow();
                job.Cancel.Cancel();
            }
        }

        return Get(jobId);
    }

    private Job Find(string jobId) =>
        jobs.FirstOrDefault(j => j.Id == jobId) ?? throw new HubError(404, 404002, "JobNotFound", $"The job {jobId} does not exist.");

    private async Task RunAsync(Job job)
    {
        lock (gate)
        {
            if (job.Status != "enqueued")
            {
                return;
            }

            job.Status = "running";
        }

        try
        {
            if (job.Type == "import")
            {
                await ImportAsync(job).ConfigureAwait(false);
            }
            else
            {
                await ExportAsync(job).ConfigureAwait(false);
            }

            Finish(job, "completed", null);
        }
        catch (OperationCanceledException) when (job.Cancel.IsCancellationRequested)
        {
            Finish(job, "cancelled", null);
        }
        catch (RequestFailedException ex)
        {
            Finish(job, "failed", $"The blob storage refused the job: {ex.Status} {ex.ErrorCode ?? "error"} (BlobContainerValidationError). Check the container SAS URIs and their permissions.");
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or InvalidOperationException or AggregateException)
        {
            Finish(job, "failed", $"The blob storage could not be reached: {ex.GetBaseException().Message}");
        }
    }

    private void Finish(Job job, string status, string? reason)
    {
        lock (gate)
        {
            if (job.Status == "running")
            {
                job.Status = status;
                job.FailureReason = reason;
                job.EndTime = time.GetUtcNow();
                if (status == "completed")
                {
                    job.Progress = 100;
                }
            }
        }

        log.Information($"{char.ToUpperInvariant(job.Type[0])}{job.Type[1..]} job {job.Id} {status}{(reason is null ? "." : ": " + reason)}");
    }

    private async Task ImportAsync(Job job)
    {
        var ct = job.Cancel.Token;
        var input = new BlobContainerClient(new Uri(Text(job.Request, "inputBlobContainerUri")!), ClientOptions());
        var output = new BlobContainerClient(new Uri(Text(job.Request, "outputBlobContainerUri")!), ClientOptions());
        var blob = input.GetBlobClient(Text(job.Request, "inputBlobName") ?? "devices.txt");
        long size = 0;
        try
        {
            size = (await blob.GetPropertiesAsync(cancellationToken: ct).ConfigureAwait(false)).Value.ContentLength;
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            throw new InvalidOperationException($"The input container has no blob '{blob.Name}' (BlobContainerValidationError).");
        }

        var errorLog = output.GetBlockBlobClient("importErrors.log");
        await using var errors = await errorLog.OpenWriteAsync(overwrite: true, new BlockBlobOpenWriteOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = "text/plain; charset=utf-8" },
        }, ct).ConfigureAwait(false);
        await using var errorWriter = new StreamWriter(errors, new UTF8Encoding(false));
        await using var stream = await blob.OpenReadAsync(new BlobOpenReadOptions(allowModifications: false) { BufferSize = 4 * 1024 * 1024 }, ct).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        long lineNumber = 0, applied = 0, failed = 0;
        while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            lineNumber++;
            if (line.Trim().Length == 0)
            {
                continue;
            }

            JsonObject? entry = null;
            try
            {
                entry = JsonNode.Parse(line) as JsonObject;
            }
            catch (JsonException)
            {
            }

            var error = entry is null
                ? new RegistryEntryError("", null, new HubError(400, 400012, "DeserializationError", $"Invalid device format in line {lineNumber.ToString(CultureInfo.InvariantCulture)}."), "import")
                : ExportImportDevices.Apply(hub, entry, "createOrUpdate", ExportImportDevices.ImportModes);
            if (error is null)
            {
                applied++;
            }
            else
            {
                failed++;
                await errorWriter.WriteLineAsync(error.ToImportLogJson().ToJsonString().AsMemory(), ct).ConfigureAwait(false);
            }

            if (lineNumber % 1000 == 0 && size > 0)
            {
                SetProgress(job, (int)Math.Min(99, 100 * stream.Position / size));
            }
        }

        await errorWriter.FlushAsync(ct).ConfigureAwait(false);
        log.Information($"Import job {job.Id}: {applied} devices applied, {failed} failed.");
    }

    private async Task ExportAsync(Job job)
    {
        var ct = job.Cancel.Token;
        var output = new BlobContainerClient(new Uri(Text(job.Request, "outputBlobContainerUri")!), ClientOptions());
        var excludeKeys = job.Request["excludeKeysInExport"] is JsonValue v && (v.TryGetValue<bool>(out var b) ? b : v.TryGetValue<string>(out var s) && bool.TryParse(s, out var parsed) && parsed);
        var blob = output.GetBlockBlobClient(Text(job.Request, "outputBlobName") ?? "devices.txt");
        var ids = hub.DeviceIds();
        await using var stream = await blob.OpenWriteAsync(overwrite: true, new BlockBlobOpenWriteOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = "text/plain; charset=utf-8" },
            BufferSize = 4 * 1024 * 1024,
        }, ct).ConfigureAwait(false);
        await using var writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16);
        for (var i = 0; i < ids.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            JsonObject line;
            try
            {
                line = ExportImportDevices.Export(hub.GetDeviceJson(ids[i]), hub.GetTwinJson(ids[i]), excludeKeys);
            }
            catch (HubError error) when (error.Status == 404)
            {
                continue; // removed while the export ran
            }

            await writer.WriteAsync(line.ToJsonString().AsMemory(), ct).ConfigureAwait(false);
            await writer.WriteAsync("\n".AsMemory(), ct).ConfigureAwait(false);
            if (i % 1000 == 999)
            {
                SetProgress(job, (int)(99L * (i + 1) / ids.Count));
            }
        }

        await writer.FlushAsync(ct).ConfigureAwait(false);
    }

    private void SetProgress(Job job, int progress)
    {
        lock (gate)
        {
            job.Progress = Math.Max(job.Progress, progress);
        }
    }

    private static JsonObject ToJson(Job job)
    {
        var json = new JsonObject
        {
            ["jobId"] = job.Id,
            ["startTimeUtc"] = job.StartTime.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
            ["endTimeUtc"] = job.EndTime?.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
            ["type"] = job.Type,
            ["status"] = job.Status,
            ["progress"] = job.Progress,
            ["storageAuthenticationType"] = "keyBased",
            ["excludeKeysInExport"] = job.Request["excludeKeysInExport"]?.DeepClone() ?? false,
            ["includeConfigurations"] = false,
        };
        foreach (var name in new[] { "inputBlobContainerUri", "outputBlobContainerUri" })
        {
            if (Text(job.Request, name) is { } uri)
            {
                json[name] = uri;
            }
        }

        json["inputBlobName"] = job.Type == "import" ? Text(job.Request, "inputBlobName") ?? "devices.txt" : null;
        json["outputBlobName"] = job.Type == "export" ? Text(job.Request, "outputBlobName") ?? "devices.txt" : "importErrors.log";
        if (job.FailureReason is not null)
        {
            json["failureReason"] = job.FailureReason;
        }

        return json;
    }

    private static BlobClientOptions ClientOptions() => new() { Retry = { MaxRetries = 3 } };

    private static string? Text(JsonObject json, string name) => json[name] is JsonValue v && v.TryGetValue<string>(out var s) && s.Length > 0 ? s : null;

    public void Dispose()
    {
        lock (gate)
        {
            foreach (var job in jobs.Where(j => j.IsActive))
            {
                job.Cancel.Cancel();
            }
        }
    }
}
