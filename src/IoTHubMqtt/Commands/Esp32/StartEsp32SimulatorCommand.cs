using System.Collections;
using System.Globalization;
using System.Management.Automation;
using IoTHubMqtt.Esp32.Simulator;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>
/// <para type="synopsis">Starts a simulated ESP32 board in its serial bootloader, on a socket:// (or rfc2217://) port of this computer.</para>
/// <para type="description">The simulator answers the ROM loader and flasher stub protocol as Espressif documents it (Espressif's
/// own esptool-js flashes it unchanged), with NOR flash, chip detection registers, MAC, SPI flash id, baud changes and fault
/// injection, so scripts and pipelines that flash boards can be tested without one. Pass its Port to the ESP32 cmdlets;
/// read its flash back with ReadFlash(offset, length) or SaveFlash(path). It runs until Stop-Esp32Simulator or the end of
/// the PowerShell process.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "Esp32Simulator", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(SimulatorServer))]
public sealed class StartEsp32SimulatorCommand : IoTHubCmdlet
{
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
    [Parameter]
    public SwitchParameter Rfc2217 { get; set; }

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
            ThrowTerminatingError(InvalidArgument("Esp32SimulatorChipRequired", "-Chip Auto is not a chip to simulate.", "Use -Chip Esp32, Esp32S2, Esp32S3, Esp32C3, Esp32C6 or Esp32H2."), Chip);
            return;
        }

        var options = new SimulatorOptions
        {
            Chip = Enum.Parse<SimulatedChipType>(Chip.ToString()),
            FlashSize = int.Parse(FlashSize[..^2], CultureInfo.InvariantCulture) * 1024 * 1024,
            LimitRate = LimitRate,
            StartInBootloader = !Rfc2217,
            IgnoreFirstSyncs = IgnoreFirstSyncs,
        };
        Terminating(() =>
        {
            if (MacAddress is not null)
            {
                options.Mac = MacAddress.Split(':', '-').Select(b => byte.Parse(b, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
            }

            options.Faults.AddRange(Fault.Select(ToFault));
        });

        if (!ShouldProcess($"simulated {Chip} ({FlashSize} flash) on a loopback port", "Start"))
        {
            return;
        }

        var server = new SimulatorServer(new Esp32Simulator(options), Rfc2217);
        Esp32SimulatorSession.Add(server);
        WriteObject(server);
    }

    private static SimulatorFault ToFault(Hashtable table)
    {
        var values = table.Cast<DictionaryEntry>().ToDictionary(e => e.Key.ToString() ?? string.Empty, e => e.Value is PSObject p ? p.BaseObject : e.Value, StringComparer.OrdinalIgnoreCase);
        string Text(string key) => values.TryGetValue(key, out var v) && v is not null ? Convert.ToString(v, CultureInfo.InvariantCulture)! : string.Empty;
        try
        {
            if (values.Keys.FirstOrDefault(k => !new[] { "Kind", "Command", "Occurrence", "Delay" }.Contains(k, StringComparer.OrdinalIgnoreCase)) is { } unknown)
            {
                throw new ArgumentException($"unknown key '{unknown}'");
            }

            return new SimulatorFault(
                Enum.Parse<SimulatorFaultKind>(Text("Kind"), ignoreCase: true),
                SimulatorFault.OpcodeOf(Text("Command")),
                values.ContainsKey("Occurrence") ? LanguagePrimitives.ConvertTo<int>(values["Occurrence"]) : 1,
                values.ContainsKey("Delay") ? TimeSpan.FromSeconds(LanguagePrimitives.ConvertTo<double>(values["Delay"])) : TimeSpan.Zero);
        }
        catch (Exception ex) when (ex is ArgumentException or PSInvalidCastException or FormatException)
        {
            throw new Core.Errors.IoTHubMqttException("Esp32SimulatorFaultInvalid", Core.Errors.IoTHubErrorKind.InvalidArgument,
                $"-Fault @{{{string.Join("; ", values.Select(v => $"{v.Key}={v.Value}"))}}} is not a fault: {ex.Message}.",
                "Use @{ Kind = 'DropResponse'; Command = 'FLASH_DEFL_DATA'; Occurrence = 2 } (Kind: " + string.Join(", ", Enum.GetNames<SimulatorFaultKind>()) + ").", null, ex);
        }
    }
}
