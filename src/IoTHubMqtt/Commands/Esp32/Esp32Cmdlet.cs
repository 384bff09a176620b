using System.Management.Automation;
using IoTHubMqtt.Completion;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>What the ESP32 cmdlets share: -Port, -Chip, -Baud, connecting with progress and verbose sinks.</summary>
public abstract class Esp32Cmdlet : IoTHubCmdlet
{
    /// <summary>Serial port (COM5, /dev/ttyUSB0), socket://host:port or rfc2217://host:port.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(PortCompleter))]
    public string Port { get; set; } = string.Empty;

    /// <summary>The chip you expect; the board's chip is checked against it.</summary>
    [Parameter]
    public Esp32ChipName Chip { get; set; } = Esp32ChipName.Auto;

    /// <summary>Baud rate after the flasher stub runs.</summary>
    [Parameter]
    [ValidateRange(9600, 5000000)]
    public int Baud { get; set; } = 921600;

    /// <summary>How to enter the bootloader: Auto, Classic (DTR/RTS), UsbJtagSerial, None.</summary>
    [Parameter]
    public Esp32Reset Reset { get; set; } = Esp32Reset.Auto;

    protected Esp32FlasherOptions Options(string activity, bool useStub = true) => new()
    {
        BaudRate = Baud,
        Chip = Chip.To<Esp32Chip>(),
        Reset = Reset.To<Esp32ResetMode>(),
        UseStub = useStub,
        Log = VerboseSink,
        Warn = message => Post(() => WriteWarning(message)),
        Progress = new PostedProgress(this, activity),
    };

    internal void PostProgress(ProgressRecord record) => Post(() => WriteProgress(record));

    /// <summary>Turns core progress into Write-Progress records, written on the pipeline thread.</summary>
    private sealed class PostedProgress(Esp32Cmdlet cmdlet, string activity) : IProgress<Esp32FlashProgress>
    {
        public void Report(Esp32FlashProgress value)
        {
            var record = new ProgressRecord(0x3532, activity, $"{value.Activity} {value.Region} @ 0x{value.Offset:X}: {value.Done / 1024} KB of {value.Total / 1024} KB"
                + (value.BytesPerSecond > 0 ? $" at {value.BytesPerSecond / 1024:0.0} KB/s" : string.Empty))
            {
                PercentComplete = value.Percent,
            };
            cmdlet.PostProgress(record);
        }
    }
}
