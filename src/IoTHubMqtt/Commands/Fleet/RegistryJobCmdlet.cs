using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service.Registry;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// Base of the cmdlets that run the hub's import and export jobs: where the device files go (a storage account's
/// connection string and a container, or a container SAS URI), and the job's progress written as it is polled.
/// </summary>
public abstract class RegistryJobCmdlet : ServiceCmdlet
{
    /// <summary>The connection string of the storage account for the device files (secret); with -Container. A SecureString is accepted too.</summary>
    [Parameter]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string? StorageConnectionString { get; set; }

    /// <summary>The blob container for the device files, created when missing. Default: iothub-devices.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Container { get; set; } = "iothub-devices";

    /// <summary>The blob container's URI with a SAS (read, write, delete, list), instead of -StorageConnectionString. Secret.</summary>
    [Parameter]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string? ContainerUri { get; set; }

    private protected abstract int ProgressId { get; }

    /// <summary>The container the parameters name; a terminating error when they name none or both.</summary>
    private protected DeviceBlobContainer OpenContainer()
    {
        if ((StorageConnectionString is null) == (ContainerUri is null))
        {
            ThrowTerminatingError(InvalidArgument(StorageConnectionString is null ? ErrorIds.StorageMissing : ErrorIds.StorageConflict,
                "Name the blob container for the device files with -StorageConnectionString (and -Container), or with -ContainerUri (a SAS URI), not both.",
                "Pass a storage account connection string, or a container SAS URI."));
        }

        if (ContainerUri is not null && !Uri.TryCreate(ContainerUri, UriKind.Absolute, out _))
        {
            ThrowTerminatingError(InvalidArgument(ErrorIds.StorageUriInvalid, "-ContainerUri is not an absolute URI.", "Pass the container's SAS URI, such as https://account.blob.core.windows.net/devices?sv=…&sig=…."));
        }

        DeviceBlobContainer? container = null;
        Terminating(() => container = ContainerUri is not null
            ? DeviceBlobContainer.FromSasUri(new Uri(ContainerUri))
            : Run(ct => DeviceBlobContainer.FromConnectionStringAsync(StorageConnectionString!, Container, TimeSpan.FromHours(24), Service.TimeProvider, ct)), Container);
        return container!;
    }

    /// <summary>A progress callback for the core, safe from any thread: it writes on the pipeline thread.</summary>
    private protected Action<JobProgress> JobProgressSink(string activity) => p => Post(() => WriteProgress(new ProgressRecord(ProgressId, activity, p.Stage)
    {
        PercentComplete = p.Job?.Progress ?? 0,
        CurrentOperation = p.Job is { } job ? $"{job.Type} job {job.JobId}: {job.Status}, {job.Progress} %" : null,
    }));

    private protected void CompleteProgress(string activity) =>
        WriteProgress(new ProgressRecord(ProgressId, activity, "Done") { RecordType = ProgressRecordType.Completed });
}
