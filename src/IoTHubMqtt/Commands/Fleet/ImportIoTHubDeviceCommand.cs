using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Service.Registry;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// <para type="synopsis">Imports devices with the hub's import job: the module writes the device file to a blob container and the hub applies it, for fleets of thousands to millions.</para>
/// </summary>
[Cmdlet(VerbsData.Import, "IoTHubDevice", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = PipelineSet)]
[OutputType(typeof(IoTHubImportResult))]
public sealed class ImportIoTHubDeviceCommand : RegistryJobCmdlet
{
    private const string PipelineSet = "Pipeline";
    private const string PathSet = "Path";
    private const string Activity = "Import-IoTHubDevice";
    private DeviceFile? file;
    private int row;

    /// <summary>A device: any object with DeviceId (or Id, SerialNumber) and optionally Status, AuthenticationType, PrimaryKey, SecondaryKey, thumbprints, Tags, ETag — CSV rows, hashtables, exported devices.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = PipelineSet)]
    [AllowNull]
    public object? InputObject { get; set; }

    /// <summary>A device file: a CSV (.csv, with a DeviceId column) or JSON lines in the hub's own format (an export file).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    /// <summary>What the import does with each device: Create (default; an existing device is left as it is), CreateOrUpdate, Update, UpdateIfMatchETag, Delete, DeleteIfMatchETag, CreateOrUpdateIfMatchETag.</summary>
    [Parameter]
    public IoTHubImportMode Mode { get; set; } = IoTHubImportMode.Create;

    private protected override int ProgressId => 5;

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        file = new DeviceFile(Enum.Parse<RegistryImportMode>(Mode.ToString()));
    }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == PipelineSet)
        {
            row++;
            var input = DeviceInputReader.Read(InputObject);
            Add(() => file!.Add(input, row), input.TargetFor(row));
        }
    }

    protected override void EndProcessing()
    {
        if (ParameterSetName == PathSet)
        {
            var path = GetUnresolvedProviderPathFromPSPath(Path);
            Terminating(() => ReadFile(path), Path);
        }

        if (file!.Count == 0)
        {
            WriteWarning("There are no devices to import.");
            return;
        }

        if (!ShouldProcess($"{file.Count} devices into {Service.HostName}", $"Import ({Mode})"))
        {
            return;
        }

        var container = OpenContainer();
        ImportJobResult? result = null;
        Terminating(() => result = Run(ct => RegistryJobs.ImportAsync(Service, file, container, container, JobProgressSink(Activity), ct)), Service.HostName);
        foreach (var failed in result!.Failed)
        {
            WriteError(failed.ToException("Import device"), failed.DeviceId.Length == 0 ? null : failed.DeviceId);
        }

        CompleteProgress(Activity);
        WriteObject(new IoTHubImportResult(result, Mode.ToString()));
    }

    private void ReadFile(string path)
    {
        using var reader = new StreamReader(path);
        if (path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
        {
            foreach (var csvRow in DeviceCsv.Read(reader))
            {
                Add(() => file!.Add(csvRow.Device ?? throw csvRow.Error!, csvRow.Line), csvRow.Device?.TargetFor(csvRow.Line) ?? $"line {csvRow.Line}");
            }

            return;
        }

        var line = 0;
        while (reader.ReadLine() is { } text)
        {
            line++;
            if (text.Trim().Length > 0)
            {
                var number = line;
                Add(() => file!.AddLine(text, number), $"line {number}");
            }
        }
    }

    /// <summary>Adds one device to the file; a bad one is a non-terminating error in its place.</summary>
    private void Add(Action add, object target)
    {
        try
        {
            add();
        }
        catch (IoTHubMqttException ex)
        {
            WriteError(ex, ex.Target ?? target);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            file?.Dispose();
        }

        base.Dispose(disposing);
    }
}
