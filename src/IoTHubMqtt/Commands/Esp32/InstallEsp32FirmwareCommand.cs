using System.Collections;
using System.Management.Automation;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Core.NanoFramework;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>
/// <para type="synopsis">Flashes an ESP32: a nanoFramework firmware package, a deployment image, or any offset=file images.</para>
/// <para type="description">Connects through the serial bootloader, checks the chip, uploads the flasher stub, switches to -Baud
/// and writes each region compressed, then checks the flash MD5 of every region. Regions whose flash already matches are
/// skipped (-Force rewrites them). The deployment image goes to the deployment partition found by parsing the partition
/// table (from -Package, or read from the board). One result object per region; any failure is an error naming the region
/// and offset, never a success.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Install, "Esp32Firmware", DefaultParameterSetName = ConfigurationSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(Esp32RegionResult))]
public sealed class InstallEsp32FirmwareCommand : Esp32Cmdlet
{
    private const string PackageSet = "Package";
    private const string ImageSet = "Image";
    private const string DeploymentSet = "Deployment";
    private const string ConfigurationSet = "Configuration";

    /// <summary>A nanoFramework ESP32 firmware package: a folder or .zip with bootloader.bin, partitions_*.bin, nanoCLR.bin.</summary>
    [Parameter(Mandatory = true, ParameterSetName = PackageSet)]
    [ValidateNotNullOrEmpty]
    public string Package { get; set; } = string.Empty;

    /// <summary>Images by offset: @{0x1000='bootloader.bin'; 0x8000='partition-table.bin'} or '0x10000=app.bin' strings.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ImageSet)]
    [ValidateNotNullOrEmpty]
    public object[] Image { get; set; } = [];

    /// <summary>A nanoFramework deployment image (.pe files concatenated), written to the deployment partition.</summary>
    [Parameter(ParameterSetName = PackageSet)]
    [Parameter(Mandatory = true, ParameterSetName = DeploymentSet)]
    [ValidateNotNullOrEmpty]
    public string? DeploymentImage { get; set; }

    /// <summary>
    /// The device's configuration, written as a littlefs image to the board's <c>config</c> partition (read at boot by the
    /// firmware): a hashtable or object with WifiSsid, WifiPassword (or WifiCredential), ConnectionString or IdScope +
    /// RegistrationId + SymmetricKey, optional CaCertificate (PEM path or text), TelemetryInterval, MqttPort.
    /// </summary>
    [Parameter(ParameterSetName = PackageSet)]
    [Parameter(ParameterSetName = ImageSet)]
    [Parameter(ParameterSetName = DeploymentSet)]
    [Parameter(Mandatory = true, ParameterSetName = ConfigurationSet)]
    [ValidateNotNull]
    public object? Configuration { get; set; }

    /// <summary>Rewrite regions even when the flash already holds them.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Erase the whole flash first.</summary>
    [Parameter]
    public SwitchParameter Erase { get; set; }

    /// <summary>SPI flash mode written to the bootloader header (Keep leaves the image's).</summary>
    [Parameter]
    public Esp32FlashModeName FlashMode { get; set; } = Esp32FlashModeName.Keep;

    /// <summary>Flash size written to the bootloader header; Detect uses the size read from the board.</summary>
    [Parameter]
    [ValidateSet("Detect", "1MB", "2MB", "4MB", "8MB", "16MB", "32MB", "64MB", "128MB")]
    public string FlashSize { get; set; } = "Detect";

    /// <summary>SPI flash frequency written to the bootloader header (Keep leaves the image's); the chip must support it.</summary>
    [Parameter]
    [Alias("FlashFreq")]
    [ValidateSet("Keep", "80m", "48m", "40m", "26m", "24m", "20m", "16m", "12m")]
    public string FlashFrequency { get; set; } = "Keep";

    /// <summary>Stay in the bootloader instead of resetting into the application afterwards.</summary>
    [Parameter]
    public SwitchParameter NoReset { get; set; }

    protected override void ProcessRecord()
    {
        FirmwarePackage? package = null;
        var images = new List<Esp32FlashRegion>();
        byte[]? deployment = null;
        DeviceConfiguration? configuration = null;
        Terminating(() =>
        {
            if (ParameterSetName == PackageSet)
            {
                package = FirmwarePackage.Load(GetUnresolvedProviderPathFromPSPath(Package));
            }

            if (ParameterSetName == ImageSet)
            {
                images.AddRange(ReadImages());
            }

            if (DeploymentImage is not null)
            {
                deployment = File.ReadAllBytes(GetUnresolvedProviderPathFromPSPath(DeploymentImage));
            }

            if (Configuration is not null)
            {
                configuration = Esp32DeviceConfigurationReader.Read(Configuration, GetUnresolvedProviderPathFromPSPath);
            }
        }, Package);

        var options = Options("Install-Esp32Firmware");
        options.Force = Force;
        options.FlashMode = FlashMode.To<Esp32FlashMode>();
        options.FlashSize = FlashSize == "Detect" ? null : long.Parse(FlashSize[..^2], System.Globalization.CultureInfo.InvariantCulture) * 1024 * 1024;
        options.FlashFrequency = FlashFrequency == "Keep" ? null : FlashFrequency;
        options.ResetAfter = !NoReset;
        options.RegionCompleted = result => Post(() => WriteObject(result)); // each region as soon as it is verified
        Esp32Flasher? flasher = null;
        try
        {
            flasher = Run(token => Esp32Flasher.ConnectAsync(Port, options, token));
            var chip = flasher.ChipInfo;
            var regions = new List<Esp32FlashRegion>(images);
            if (package is not null)
            {
                regions.AddRange(package.Regions(chip));
            }

            if (deployment is not null || configuration is not null)
            {
                var table = package?.Partitions ?? PartitionTable.Parse(Run(token => flasher.ReadFlashAsync(PartitionTable.DefaultOffset, PartitionTable.MaxLength, token)));
                if (deployment is not null)
                {
                    regions.Add(FirmwarePackage.DeploymentRegion(table, deployment));
                }

                if (configuration is not null)
                {
                    regions.Add(ConfigurationRegion(table, configuration));
                }
            }

            var plan = flasher.Prepare(regions);
            var description = (Erase ? "Erase the whole flash, then write " : "Write ") + string.Join(", ", plan.Select(r => r.ToString()));
            if (!ShouldProcess($"{flasher.Device.ChipName} on {Port}", description))
            {
                return;
            }

            if (Erase)
            {
                Run(token => flasher.EraseFlashAsync(token));
            }

            Run(token => flasher.WriteAsync(plan, token));
            WriteProgress(new ProgressRecord(0x3532, "Install-Esp32Firmware", "Done") { RecordType = ProgressRecordType.Completed });
        }
        catch (Exception ex) when (Infrastructure.ErrorMapper.IsMappable(ex))
        {
            ThrowTerminatingError(ex, Port);
        }
        finally
        {
            if (flasher is not null)
            {
                flasher.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }
    }

    // The littlefs image of the config partition (by name, else the data partition of subtype littlefs or spiffs).
    private static Esp32FlashRegion ConfigurationRegion(PartitionTable table, DeviceConfiguration configuration)
    {
        var partition = table.Find(DeviceConfigurationFormat.PartitionName)
            ?? table.Find(PartitionEntry.TypeData, 0x83)
            ?? table.Find(PartitionEntry.TypeData, 0x82)
            ?? throw new Core.Errors.IoTHubMqttException("PartitionNotFound", Core.Errors.IoTHubErrorKind.NotFound,
                $"The partition table has no '{DeviceConfigurationFormat.PartitionName}' partition for the device configuration.",
                "Flash a nanoFramework firmware package whose partition table has a config (littlefs) partition.", DeviceConfigurationFormat.PartitionName);
        return FirmwarePackage.PartitionRegion(partition, DeviceConfigurationFormat.BuildConfigPartition(configuration, (int)partition.Size), DeviceConfigurationFormat.PartitionName);
    }

    private IEnumerable<Esp32FlashRegion> ReadImages()
    {
        var pairs = new List<(uint Offset, string Path)>();
        foreach (var item in Image.Select(i => i is PSObject pso ? pso.BaseObject : i))
        {
            switch (item)
            {
                case IDictionary table:
                    foreach (DictionaryEntry entry in table)
                    {
                        pairs.Add((Esp32RegionSpec.ParseOffset(entry.Key is PSObject k ? k.BaseObject : entry.Key), entry.Value?.ToString() ?? string.Empty));
                    }

                    break;
                case string text:
                    pairs.Add(Esp32RegionSpec.ParsePair(text));
                    break;
                default:
                    throw InvalidArgument("Esp32InvalidImageSpec", $"'{item}' is not offset=file or a hashtable.", "Use @{0x1000='bootloader.bin'} or '0x1000=bootloader.bin'.");
            }
        }

        foreach (var (offset, path) in pairs)
        {
            var full = GetUnresolvedProviderPathFromPSPath(path);
            if (!File.Exists(full))
            {
                throw new Core.Errors.IoTHubMqttException("Esp32ImageNotFound", Core.Errors.IoTHubErrorKind.NotFound, $"Image file '{path}' does not exist.", null, path);
            }

            yield return new Esp32FlashRegion(Path.GetFileName(full), offset, File.ReadAllBytes(full));
        }
    }
}
