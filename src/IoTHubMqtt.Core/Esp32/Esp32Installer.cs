using IoTHubMqtt.Core.Esp32.Transport;
using IoTHubMqtt.Core.NanoFramework;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>Carries out an <see cref="Esp32InstallPlan"/> on a board: what Install-Esp32Firmware runs after ShouldProcess.</summary>
public static class Esp32Installer
{
    /// <summary>
    /// Connects (reset, sync, chip checked against the plan's images and <see cref="Esp32FlasherOptions.Chip"/>), places the
    /// regions that follow the board's partition table, erases the flash when asked, then writes: regions whose flash MD5
    /// already matches are skipped, every written region is verified, and the board is reset into its application.
    /// </summary>
    public static async Task<IReadOnlyList<Esp32RegionResult>> InstallAsync(string port, Esp32InstallPlan plan, Esp32FlasherOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(options);
        await using var flasher = await Esp32Flasher.ConnectAsync(port, options, cancellationToken).ConfigureAwait(false);
        return await InstallAsync(flasher, plan, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The same over a connected flasher (tests, or a port opened by the caller).</summary>
    public static async Task<IReadOnlyList<Esp32RegionResult>> InstallAsync(Esp32Flasher flasher, Esp32InstallPlan plan, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(flasher);
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.ImageChip is { } imageChip && imageChip.ImageChipId != flasher.ChipInfo.ImageChipId)
        {
            throw Esp32Errors.ImageChipMismatch(plan.Package is not null ? "bootloader" : plan.Regions.First(r => r.Kind == Esp32RegionKind.Image).Name, imageChip.ImageChipId, flasher.ChipInfo.Chip);
        }

        var regions = new List<Esp32FlashRegion>(plan.Package is null
            ? plan.Regions
            : plan.Regions.Select(r => r.Name == "bootloader" && r.Kind == Esp32RegionKind.Image ? r with { Offset = flasher.ChipInfo.BootloaderOffset } : r));
        if (plan.NeedsBoardPartitionTable)
        {
            var table = await flasher.ReadPartitionTableAsync(cancellationToken).ConfigureAwait(false);
            regions.AddRange(plan.PlaceOnBoardTable(table));
        }

        // Everything is laid out and checked against the detected chip and flash size before the first byte is written.
        var prepared = flasher.Prepare(regions);
        if (plan.Erase)
        {
            await flasher.EraseFlashAsync(cancellationToken).ConfigureAwait(false);
        }

        return await flasher.WriteAsync(prepared, cancellationToken).ConfigureAwait(false);
    }
}
