using System.Management.Automation;
using IoTHubMqtt.Completion;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>
/// <para type="synopsis">Finds ESP32 boards and reports chip, revision, features, MAC and flash size.</para>
/// <para type="description">With -Port, asks the board on that port through its serial bootloader. Without it, lists serial
/// ports whose USB VID/PID belongs to Espressif native USB, CP210x, CH340/CH9102 or FTDI bridges and asks each. The board
/// is reset into the bootloader and back into its application.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "Esp32Device", DefaultParameterSetName = ScanSet)]
[OutputType(typeof(Esp32DeviceInfo), typeof(Esp32PortCandidate))]
public sealed class GetEsp32DeviceCommand : IoTHubCmdlet
{
    private const string ScanSet = "Scan";
    private const string PortSet = "Port";

    /// <summary>Ports to ask (COM5, /dev/ttyUSB0, socket://host:port, rfc2217://host:port).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PortSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(PortCompleter))]
    public string[] Port { get; set; } = [];

    /// <summary>How to enter the bootloader.</summary>
    [Parameter]
    public Esp32Reset Reset { get; set; } = Esp32Reset.Auto;

    /// <summary>Only list the candidate ports found by USB id, without talking to the boards.</summary>
    [Parameter(ParameterSetName = ScanSet)]
    public SwitchParameter ListOnly { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == PortSet)
        {
            foreach (var port in Port)
            {
                Probe(port, null);
            }

            return;
        }

        var candidates = Esp32PortEnumerator.Enumerate();
        if (candidates.Count == 0)
        {
            WriteError(new IoTHubMqttException(ErrorIds.Esp32NoDeviceFound,
                "No serial port with an ESP32 USB bridge (Espressif USB, CP210x, CH340, FTDI) was found.",
                "Connect the board with a data cable; on Linux check that the driver created /dev/ttyUSB* or /dev/ttyACM*; or pass -Port."));
            return;
        }

        for (var i = 0; i < candidates.Count; i++)
        {
            var candidate = candidates[i];
            if (ListOnly)
            {
                WriteObject(candidate);
            }
            else
            {
                // Each board is reset into its bootloader and asked: about a second per port.
                WriteProgress(new ProgressRecord(ProgressId, "Get-Esp32Device", $"Asking {candidate.Port} ({i + 1} of {candidates.Count})") { PercentComplete = 100 * i / candidates.Count });
                Probe(candidate.Port, candidate);
            }
        }

        if (!ListOnly)
        {
            WriteProgress(new ProgressRecord(ProgressId, "Get-Esp32Device", "Done") { RecordType = ProgressRecordType.Completed });
        }
    }

    private const int ProgressId = 0x3533;

    private void Probe(string port, Esp32PortCandidate? candidate)
    {
        try
        {
            var info = Run(async token =>
            {
                var options = new Esp32FlasherOptions { UseStub = false, Reset = Reset.To<Esp32ResetMode>(), UsbProductId = candidate?.ProductId, Log = VerboseSink };
                await using var flasher = await Esp32Flasher.ConnectAsync(port, options, token).ConfigureAwait(false);
                await flasher.HardResetAsync(token).ConfigureAwait(false);
                return flasher.Device;
            });
            WriteObject(candidate is null ? info : info with { UsbId = candidate.UsbId });
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            WriteError(ex, port);
        }
    }
}
