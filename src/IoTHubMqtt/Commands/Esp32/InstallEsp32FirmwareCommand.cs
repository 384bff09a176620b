using System.Management.Automation;
using IoTHubMqtt.Core.Esp32;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>
/// <para type="synopsis">Flashes an ESP32: a nanoFramework firmware package, a deployment image, or any offset=file images.</para>
/// <para type="description">Reads and checks every file before a port is opened (ESP image headers, checksums and chip ids,
/// partition tables as ESP-IDF checks them, deployment images, sizes, sector alignment), so -WhatIf prints the plan without
/// touching the board. Then connects through the serial bootloader, checks the chip, writes each changed region compressed
/// and verifies its flash MD5; regions whose flash already matches are skipped (-Force rewrites them). One result object per
/// region; any failure is an error naming the region and offset, never a success.</para>
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

    /// <summary>The -Image files are raw data (a filesystem or NVS image) written as given, not ESP images or a partition table.</summary>
    [Parameter(ParameterSetName = ImageSet)]
    public SwitchParameter Raw { get; set; }

    /// <summary>Rewrite regions even when the flash already holds them.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Erase the whole flash first (asks first: high impact, like Clear-Esp32Flash).</summary>
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
        long? flashSize = FlashSize == "Detect" ? null : long.Parse(FlashSize[..^2], System.Globalization.CultureInfo.InvariantCulture) * 1024 * 1024;
        Esp32InstallPlan? plan = null;
        Terminating(() => plan = Esp32InstallPlan.Create(new Esp32InstallRequest
        {
            PackagePath = Package.Length == 0 ? null : GetUnresolvedProviderPathFromPSPath(Package),
            Images = Esp32RegionSpec.ParsePairs(Image.Select(Unwrap), Unwrap).Select(p => (p.Offset, GetUnresolvedProviderPathFromPSPath(p.Path))).ToList(),
            Raw = Raw,
            DeploymentImagePath = DeploymentImage is null ? null : GetUnresolvedProviderPathFromPSPath(DeploymentImage),
            Configuration = Configuration is null ? null : Esp32DeviceConfigurationReader.Read(Configuration, GetUnresolvedProviderPathFromPSPath),
            Erase = Erase,
            Chip = Chip.To<Esp32Chip>(),
            FlashSize = flashSize,
        }), Package.Length > 0 ? Package : Port);

        // Nothing has touched the port yet: -WhatIf ends here, and -Erase (the whole flash) asks as a high-impact change would.
        if (!ShouldProcess(Port, plan!.Describe()) || (Erase && !ConfirmErase()))
        {
            return;
        }

        var options = Options("Install-Esp32Firmware");
        options.Force = Force;
        options.FlashMode = FlashMode.To<Esp32FlashMode>();
        options.FlashSize = flashSize;
        options.FlashFrequency = FlashFrequency == "Keep" ? null : FlashFrequency;
        options.ResetAfter = !NoReset;
        options.RegionCompleted = result => Post(() => WriteObject(result)); // each region as soon as it is verified
        try
        {
            Run(token => Esp32Installer.InstallAsync(Port, plan, options, token));
            WriteProgress(new ProgressRecord(0x3532, "Install-Esp32Firmware", "Done") { RecordType = ProgressRecordType.Completed });
        }
        catch (Exception ex) when (Infrastructure.ErrorMapper.IsMappable(ex))
        {
            ThrowTerminatingError(ex, Port);
        }
    }

    // -Erase wipes the whole flash: confirmed unless -Confirm was given (it asked already, or was turned off) or $ConfirmPreference is None.
    private bool ConfirmErase() =>
        MyInvocation.BoundParameters.ContainsKey("Confirm")
            || GetVariableValue("ConfirmPreference") is ConfirmImpact.None
            || ShouldContinue($"Erase the whole flash of the board on {Port} before writing? Everything on it (firmware, settings, files) is lost.", "Confirm -Erase");

    private static object? Unwrap(object? value) => value is PSObject pso ? pso.BaseObject : value;
}
