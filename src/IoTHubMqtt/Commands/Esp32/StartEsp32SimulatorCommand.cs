using System.Collections;
using System.Globalization;
using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Esp32.Simulator;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>
/// <para type="synopsis">Starts a simulated ESP32 board in its serial bootloader, on a socket:// (or rfc2217://) port of this computer, or on a serial pty (Linux).</para>
/// <para type="description">The simulator answers the ROM loader and flasher stub protocol as Espressif documents it (Espressif's
/// own esptool-js flashes it unchanged), with NOR flash, chip detection registers, MAC, SPI flash id, baud changes and fault
/// injection, so scripts and pipelines that flash boards can be tested without one. Pass its Port to the ESP32 cmdlets;
/// read its flash back with ReadFlash(offset, length) or SaveFlash(path). It runs until Stop-Esp32Simulator or the end of
/// the PowerShell process.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "Esp32Simulator", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, DefaultParameterSetName = SocketSet)]
[OutputType(typeof(SimulatorServer))]
public sealed class StartEsp32SimulatorCommand : IoTHubCmdlet
{
    private const string SocketSet = "Socket";
    private const string PtySet = "Pty";

    /// <summary>The chip to simulate.</summary>
    [Parameter(Position = 0)]
    public Esp32ChipName Chip { get; set; } = Esp32ChipName.Esp32;

    /// <summary>The flash size.</summary>
    [Parameter]
    [ValidateSet("1MB", "2MB", "4MB", "8MB", "16MB")]
    public string FlashSize { get; set; } = "4MB";

    /// <summary>The MAC address in eFuse, e.g. 24:0a:c4:12:34:56.</summary>
    [Parameter]
    [ValidatePattern("^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")]
    public string? MacAddress { get; set; }

    /// <summary>Serve RFC 2217 (a remote serial port with DTR/RTS): the board then runs its application until reset into the loader.</summary>
    [Parameter(ParameterSetName = SocketSet)]
    public SwitchParameter Rfc2217 { get; set; }

    /// <summary>Serve on a pseudo-terminal (Linux): Port is a serial device opened through System.IO.Ports; its baud rate matters.</summary>
    [Parameter(Mandatory = true, ParameterSetName = PtySet)]
    public SwitchParameter Pty { get; set; }

    /// <summary>A symlink to make to the pty, for a stable port name (like socat's link=); removed when the simulator stops.</summary>
    [Parameter(ParameterSetName = PtySet)]
    [ValidateNotNullOrEmpty]
    public string? DevicePath { get; set; }

    /// <summary>The loader acknowledges CHANGE_BAUDRATE but keeps its rate (a fault seen on a pty or over RFC 2217).</summary>
    [Parameter]
    public SwitchParameter IgnoreBaudRateChange { get; set; }

    /// <summary>The fastest rate the line carries, like a USB-serial bridge's limit; above it both ends read noise.</summary>
    [Parameter]
    [ValidateRange(9600, 5000000)]
    public int MaxBaudRate { get; set; }

    /// <summary>Hold the simulated UART to its baud rate (10 bits a byte), as a real line would.</summary>
    [Parameter]
    public SwitchParameter LimitRate { get; set; }

    /// <summary>Faults to inject: hashtables with Kind (DropResponse, CorruptResponse, DelayResponse, DropRequestByte, Disconnect, SilentWriteFailure), Command (FLASH_DEFL_DATA, 0x11, …), Occurrence (the Nth such command; 0 = every write for SilentWriteFailure) and Delay (seconds, for DelayResponse).</summary>
    [Parameter]
    [ValidateNotNull]
    public Hashtable[] Fault { get; set; } = [];

    /// <summary>The first N SYNC requests get no answer (a board that needs a few tries).</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int IgnoreFirstSyncs { get; set; }

    protected override void EndProcessing()
    {
        if (Chip == Esp32ChipName.Auto)
        {
            ThrowTerminatingError(InvalidArgument(ErrorIds.Esp32SimulatorChipRequired, "-Chip Auto is not a chip to simulate.", "Use -Chip Esp32, Esp32S2, Esp32S3, Esp32C3, Esp32C6 or Esp32H2."), Chip);
            return;
        }

        var options = new SimulatorOptions
        {
            Chip = Enum.Parse<SimulatedChipType>(Chip.ToString()),
            FlashSize = int.Parse(FlashSize[..^2], CultureInfo.InvariantCulture) * 1024 * 1024,
            LimitRate = LimitRate,
            StartInBootloader = !Rfc2217,
            IgnoreFirstSyncs = IgnoreFirstSyncs,
            IgnoreBaudRateChange = IgnoreBaudRateChange,
            MaxBaudRate = MaxBaudRate,
        };
        Terminating(() =>
        {
            if (MacAddress is not null)
            {
                options.Mac = MacAddress.Split(':', '-').Select(b => byte.Parse(b, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
            }

            options.Faults.AddRange(Fault.Select(Esp32SimulatorFaults.Parse));
        });

        if (Pty && SimulatorServer.PtyUnsupportedReason is { } reason)
        {
            ThrowTerminatingError(new Core.Errors.IoTHubMqttException(ErrorIds.Esp32SimulatorPtyNotSupported,
                reason, "Use the simulator's socket:// port (without -Pty), or run on Linux."), null);
            return;
        }

        var devicePath = DevicePath is null ? null : GetUnresolvedProviderPathFromPSPath(DevicePath);
        if (!ShouldProcess($"simulated {Chip} ({FlashSize} flash) on {(Pty ? "a pty" + (devicePath is null ? string.Empty : $" linked at {devicePath}") : "a loopback port")}", "Start"))
        {
            return;
        }

        SimulatorServer? server = null;
        Terminating(() =>
        {
            try
            {
                server = Pty
                    ? new SimulatorServer(new Esp32Simulator(options), SimulatorTransport.Pty, devicePath)
                    : new SimulatorServer(new Esp32Simulator(options), Rfc2217);
            }
            catch (Exception ex) when (devicePath is not null && ex is IOException or UnauthorizedAccessException)
            {
                throw new Core.Errors.IoTHubMqttException(ErrorIds.Esp32SimulatorDevicePathInvalid,
                    $"The link to the pty cannot be made at '{devicePath}': {ex.Message}", "Give -DevicePath a path that does not exist yet, in a folder you can write to.", devicePath, ex);
            }
        });
        Esp32SimulatorSession.Add(server!);
        WriteObject(server);
    }
}
