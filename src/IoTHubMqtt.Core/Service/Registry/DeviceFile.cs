using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service.Registry;

/// <summary>
/// An import file being built: each device given is validated and written as one ExportImportDevice line to a private
/// temporary file (owner-only on Unix: it may hold keys), so fleets of millions never sit in memory. A bad input fails
/// alone and is not written. Deleted on dispose.
/// </summary>
public sealed class DeviceFile : IDisposable
{
    private readonly StreamWriter writer;
    private readonly HashSet<string> ids = new(StringComparer.Ordinal);
    private bool closed;

    public DeviceFile(RegistryImportMode mode)
    {
        Mode = mode;
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"iothubmqtt-import-{Guid.NewGuid():N}.txt");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.Read, Options = FileOptions.SequentialScan };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        writer = new StreamWriter(new FileStream(Path, options), new UTF8Encoding(false), 1 << 16);
    }

    /// <summary>What the import does with each device that does not say otherwise.</summary>
    public RegistryImportMode Mode { get; }

    /// <summary>The temporary file (private).</summary>
    public string Path { get; }

    /// <summary>Devices written.</summary>
    public long Count { get; private set; }

    /// <summary>Validates and writes one device; <paramref name="row"/> names it in errors. A device id given twice is DeviceDefinedMultipleTimes.</summary>
    public void Add(DeviceInput input, int row)
    {
        ArgumentNullException.ThrowIfNull(input);
        ObjectDisposedException.ThrowIf(closed, this);
        var spec = Mode is RegistryImportMode.Delete or RegistryImportMode.DeleteIfMatchETag
            ? new DeviceInput { DeviceId = input.DeviceId, ETag = input.ETag }.Validate(row)
            : input.Validate(row);
        if (Mode is RegistryImportMode.UpdateIfMatchETag or RegistryImportMode.DeleteIfMatchETag or RegistryImportMode.CreateOrUpdateIfMatchETag && spec.ETag is null)
        {
            throw new IoTHubMqttException(ErrorIds.ETagMissing,
                $"Input {row} ({spec.DeviceId}): the mode {ExportImportDeviceJson.ModeName(Mode)} needs the device's ETag.", "Give every row an ETag, or choose a mode without IfMatchETag.", spec.DeviceId);
        }

        Write(spec.DeviceId, ExportImportDeviceJson.Write(new RegistryOperation(Mode, spec)), row);
    }

    /// <summary>
    /// Writes one line of the hub's own format (an export file, say) as it is, adding <c>importMode</c> when the line has none.
    /// The line must be a JSON object with a valid <c>id</c>.
    /// </summary>
    public void AddLine(string line, int lineNumber)
    {
        ArgumentNullException.ThrowIfNull(line);
        ObjectDisposedException.ThrowIf(closed, this);
        JsonObject json;
        try
        {
            json = JsonNode.Parse(line) as JsonObject ?? throw new JsonException("it is not a JSON object");
        }
        catch (JsonException ex)
        {
            throw new IoTHubMqttException(ErrorIds.DeviceLineInvalid, $"Line {lineNumber} is not a device: {ex.Message}", "Give one JSON object with an \"id\" a line (the format an export writes).", $"line {lineNumber}");
        }

        var id = json["id"] is JsonValue v && v.TryGetValue<string>(out var text) ? text : null;
        if (!IdentityValidator.IsValidDeviceId(id))
        {
            throw new IoTHubMqttException(id is null ? ErrorIds.DeviceIdMissing : ErrorIds.InvalidDeviceId,
                $"Line {lineNumber} has {(id is null ? "no device id" : $"the invalid device id '{id}'")}.", "Give every line an \"id\" of letters, digits and - . _ : characters.", id ?? $"line {lineNumber}");
        }

        json["importMode"] ??= ExportImportDeviceJson.ModeName(Mode);
        Write(id!, json, lineNumber);
    }

    private void Write(string deviceId, JsonObject json, int row)
    {
        if (!ids.Add(deviceId))
        {
            throw new IoTHubMqttException(ErrorIds.DeviceDefinedMultipleTimes,
                $"Input {row}: the device '{deviceId}' is given more than once; an import applies each device once.", "Give each device once.", deviceId);
        }

        writer.Write(json.ToJsonString());
        writer.Write('\n');
        Count++;
    }

    /// <summary>Finishes the file so it can be uploaded.</summary>
    public void Close()
    {
        if (!closed)
        {
            closed = true;
            writer.Dispose();
        }
    }

    public void Dispose()
    {
        Close();
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
