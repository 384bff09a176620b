using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>
/// <para type="synopsis">Erases the whole flash of an ESP32, or a 4 KiB-aligned region of it.</para>
/// </summary>
[Cmdlet(VerbsCommon.Clear, "Esp32Flash", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(Esp32DeviceInfo))]
public sealed class ClearEsp32FlashCommand : Esp32Cmdlet
{
    /// <summary>Start of the region to erase (e.g. 0x1E0000); with -Length. Without both, the whole flash is erased.</summary>
    [Parameter]
    public object? Offset { get; set; }

    /// <summary>Bytes to erase (a multiple of 4 KiB).</summary>
    [Parameter]
    public object? Length { get; set; }

    /// <summary>Erase without asking (for scripts and CI jobs, where no one can answer); -WhatIf still only describes.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Writes the board's description when done.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        uint? offset = null, length = null;
        Terminating(() =>
        {
            if ((Offset is null) != (Length is null))
            {
                throw InvalidArgument(ErrorIds.Esp32RegionIncomplete, "-Offset and -Length go together.", "Give both to erase a region, or neither to erase the whole flash.");
            }

            if (Offset is not null)
            {
                offset = Esp32RegionSpec.ParseOffset(Unwrap(Offset));
                length = Esp32RegionSpec.ParseOffset(Unwrap(Length));
            }
        });

        var what = offset is null ? "Erase the whole flash" : $"Erase {length} bytes at 0x{offset:X}";
        var approved = false;
        Terminating(() => approved = Esp32Confirmation.Approve(this, Port, what, Force), Port);
        if (!approved)
        {
            return;
        }

        try
        {
            var device = Run(async token =>
            {
                var options = Options("Clear-Esp32Flash");
                await using var flasher = await Esp32Flasher.ConnectAsync(Port, options, token).ConfigureAwait(false);
                if (offset is { } o)
                {
                    await flasher.EraseRegionAsync(o, length!.Value, token).ConfigureAwait(false);
                }
                else
                {
                    await flasher.EraseFlashAsync(token).ConfigureAwait(false);
                }

                return flasher.Device;
            });
            if (PassThru)
            {
                WriteObject(device);
            }
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            ThrowTerminatingError(ex, Port);
        }
    }

    private static object? Unwrap(object? value) => value is PSObject pso ? pso.BaseObject : value;
}
