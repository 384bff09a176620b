using System.Runtime.CompilerServices;
using System.Text;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Sas;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service.Registry;

/// <summary>
/// A blob container that holds device files for import and export jobs, through the Azure Storage blob client
/// (Azure.Storage.Blobs): opened from a container SAS URI, or from a storage connection string and a container name (the
/// container is created when missing and a SAS is made for the hub). Device files are JSON lines, written and read as
/// streams, so a file of millions of devices never sits in memory. Storage failures are IoTHubMqttExceptions with the
/// storage service's error code; no SAS or key ever appears in a message.
/// </summary>
public sealed class DeviceBlobContainer
{
    private readonly BlobContainerClient container;

    private DeviceBlobContainer(BlobContainerClient container, Uri sasUri)
    {
        this.container = container;
        SasUri = sasUri;
    }

    /// <summary>The container's URI with a SAS, to give the hub. Secret.</summary>
    public Uri SasUri { get; }

    /// <summary>The container's URI without the SAS.</summary>
    public Uri Uri => container.Uri;

    public string Name => container.Name;

    public override string ToString() => Uri.GetLeftPart(UriPartial.Path);

    /// <summary>A container given by a SAS URI (read, write, delete and list for the module's own use; the hub needs read, or read, write and delete for output).</summary>
    public static DeviceBlobContainer FromSasUri(Uri containerSasUri)
    {
        ArgumentNullException.ThrowIfNull(containerSasUri);
        if (!containerSasUri.IsAbsoluteUri || containerSasUri.Scheme is not ("https" or "http"))
        {
            throw new IoTHubMqttException(ErrorIds.StorageUriInvalid,
                "The blob container URI must be an absolute http(s) URI with a SAS, such as https://account.blob.core.windows.net/devices?sv=…&sig=….",
                "Pass the container's SAS URI, or -StorageConnectionString with -Container.", ToSafeString(containerSasUri));
        }

        if (string.IsNullOrEmpty(containerSasUri.Query) || !containerSasUri.Query.Contains("sig=", StringComparison.Ordinal))
        {
            throw new IoTHubMqttException(ErrorIds.StorageSasMissing,
                $"The blob container URI {ToSafeString(containerSasUri)} carries no SAS: the hub could not read or write it.",
                "Make a SAS for the container (read, write, delete, list), or pass -StorageConnectionString with -Container.", ToSafeString(containerSasUri));
        }

        return new DeviceBlobContainer(new BlobContainerClient(containerSasUri, ClientOptions()), containerSasUri);
    }

    /// <summary>
    /// A container of the storage account in <paramref name="connectionString"/> (secret), created when missing, with a SAS for
    /// the hub valid for <paramref name="sasLifetime"/> (read, add, create, write, delete, list).
    /// </summary>
    public static async Task<DeviceBlobContainer> FromConnectionStringAsync(string connectionString, string containerName, TimeSpan sasLifetime, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        ArgumentException.ThrowIfNullOrEmpty(containerName);
        BlobContainerClient client;
        try
        {
            client = new BlobServiceClient(connectionString, ClientOptions()).GetBlobContainerClient(containerName);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            throw new IoTHubMqttException(ErrorIds.StorageConnectionStringInvalid,
                "The storage connection string is not valid.", "Copy the storage account's connection string (DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…).", "StorageConnectionString");
        }

        await Storage(() => client.CreateIfNotExistsAsync(cancellationToken: cancellationToken), client.Uri, "create the container").ConfigureAwait(false);
        if (!client.CanGenerateSasUri)
        {
            throw new IoTHubMqttException(ErrorIds.StorageKeyMissing,
                "The storage connection string has no account key, so no SAS can be made for the hub.", "Use a connection string with AccountKey, or pass a container SAS URI.", "StorageConnectionString");
        }

        var now = (time ?? TimeProvider.System).GetUtcNow();
        var sas = new BlobSasBuilder(BlobContainerSasPermissions.Read | BlobContainerSasPermissions.Add | BlobContainerSasPermissions.Create |
            BlobContainerSasPermissions.Write | BlobContainerSasPermissions.Delete | BlobContainerSasPermissions.List, now + sasLifetime)
        {
            BlobContainerName = client.Name,
            Resource = "c",
            StartsOn = now - TimeSpan.FromMinutes(5),
        };
        return new DeviceBlobContainer(client, client.GenerateSasUri(sas));
    }

    /// <summary>Writes <paramref name="lines"/> (one device each) to the blob, replacing it. Returns how many lines were written.</summary>
    public async Task<long> WriteLinesAsync(string blobName, IEnumerable<string> lines, CancellationToken cancellationToken = default)
    {
        var blob = container.GetBlockBlobClient(blobName);
        long count = 0;
        await Storage(async () =>
        {
            await using var stream = await blob.OpenWriteAsync(overwrite: true, new Azure.Storage.Blobs.Models.BlockBlobOpenWriteOptions
            {
                HttpHeaders = new BlobHttpHeaders { ContentType = "text/plain; charset=utf-8" },
                BufferSize = 4 * 1024 * 1024,
            }, cancellationToken).ConfigureAwait(false);
            await using var writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16);
            foreach (var line in lines)
            {
                cancellationToken.ThrowIfCancellationRequested();
                await writer.WriteAsync(line.AsMemory(), cancellationToken).ConfigureAwait(false);
                await writer.WriteAsync("\n".AsMemory(), cancellationToken).ConfigureAwait(false);
                count++;
            }

            await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, blob.Uri, $"write {blobName}").ConfigureAwait(false);
        return count;
    }

    /// <summary>The blob's lines as they download; an empty sequence when the blob does not exist and <paramref name="missingIsEmpty"/>.</summary>
    public async IAsyncEnumerable<string> ReadLinesAsync(string blobName, bool missingIsEmpty = false, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var blob = container.GetBlobClient(blobName);
        Stream stream;
        try
        {
            stream = await blob.OpenReadAsync(new BlobOpenReadOptions(allowModifications: false) { BufferSize = 4 * 1024 * 1024 }, cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException ex) when (ex.Status == 404 && missingIsEmpty)
        {
            yield break;
        }
        catch (RequestFailedException ex)
        {
            throw ToException(ex, blob.Uri, $"read {blobName}");
        }

        await using (stream.ConfigureAwait(false))
        {
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (true)
            {
                string? line;
                try
                {
                    line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (RequestFailedException ex)
                {
                    throw ToException(ex, blob.Uri, $"read {blobName}");
                }

                if (line is null)
                {
                    yield break;
                }

                if (line.Length > 0)
                {
                    yield return line;
                }
            }
        }
    }

    /// <summary>Uploads a local file as the blob, replacing it.</summary>
    public Task UploadFileAsync(string blobName, string path, CancellationToken cancellationToken = default)
    {
        var blob = container.GetBlobClient(blobName);
        return Storage(async () => await blob.UploadAsync(path, new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = "text/plain; charset=utf-8" },
            TransferOptions = new Azure.Storage.StorageTransferOptions { MaximumConcurrency = 4, MaximumTransferSize = 4 * 1024 * 1024, InitialTransferSize = 4 * 1024 * 1024 },
        }, cancellationToken).ConfigureAwait(false), blob.Uri, $"upload {blobName}");
    }

    /// <summary>Downloads the blob to a file that only its owner may read on Unix (device files hold keys), replacing it.</summary>
    public Task DownloadToPrivateFileAsync(string blobName, string path, CancellationToken cancellationToken = default)
    {
        var blob = container.GetBlobClient(blobName);
        return Storage(async () =>
        {
            var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            await using var file = new FileStream(path, options);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite); // an existing file keeps its mode otherwise
            }

            await blob.DownloadToAsync(file, cancellationToken).ConfigureAwait(false);
            return true;
        }, blob.Uri, $"download {blobName}");
    }

    /// <summary>Deletes the blob if it exists.</summary>
    public Task DeleteIfExistsAsync(string blobName, CancellationToken cancellationToken = default)
    {
        var blob = container.GetBlobClient(blobName);
        return Storage(() => blob.DeleteIfExistsAsync(cancellationToken: cancellationToken), blob.Uri, $"delete {blobName}");
    }

    private static BlobClientOptions ClientOptions() => new() { Retry = { MaxRetries = 3 } };

    private static async Task<T> Storage<T>(Func<Task<T>> action, Uri where, string what)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (RequestFailedException ex)
        {
            throw ToException(ex, where, what);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException && ex is not RequestFailedException)
        {
            throw new IoTHubMqttException(ErrorIds.StorageUnreachable,
                $"Could not {what} at {ToSafeString(where)}: {ex.Message}", "Check the storage account's address and the network.", ToSafeString(where), ex);
        }
    }

    private static IoTHubMqttException ToException(RequestFailedException ex, Uri where, string what)
    {
        var place = ToSafeString(where);
        var code = ex.ErrorCode ?? ex.Status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return ex.Status switch
        {
            0 => new IoTHubMqttException(ErrorIds.StorageUnreachable, $"Could not {what} at {place}: {FirstLine(ex.Message)}", "Check the storage account's address and the network.", place, ex),
            401 or 403 => new IoTHubMqttException(ErrorIds.StorageUnauthorized,
                $"The storage service refused to let the module {what} at {place} ({code}).", "Check the SAS (permissions read, write, delete, list; not expired) or the account key.", place, ex),
            404 => new IoTHubMqttException(ErrorIds.StorageNotFound, $"Could not {what}: {place} does not exist ({code}).", "Check the account and container names.", place, ex),
            _ => new IoTHubMqttException(ErrorIds.StorageRequestFailed, $"Could not {what} at {place}: the storage service answered {ex.Status} {code}.", null, place, ex),
        };
    }

    private static string FirstLine(string text) => text.Split('\n')[0].Trim();

    /// <summary>The URI without its query (the SAS).</summary>
    internal static string ToSafeString(Uri uri) => uri.IsAbsoluteUri ? uri.GetLeftPart(UriPartial.Path) : "(relative URI)";
}
