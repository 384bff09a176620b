using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>The checks every region passes before a port is opened: not empty, on a flash sector, content valid for its kind.</summary>
public static class Esp32RegionCheck
{
    /// <summary>The flash erase unit: a write starts on a sector, or it would erase bytes before it that it does not rewrite.</summary>
    public const uint SectorSize = 0x1000;

    public static void Validate(Esp32FlashRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        if (region.Data.Length == 0)
        {
            throw Esp32Errors.InvalidImage(ErrorIds.Esp32EmptyImage, $"Region '{region.Name}' at 0x{region.Offset:X} is empty. Nothing was written.", region.Name);
        }

        if (region.Offset % SectorSize != 0)
        {
            throw new IoTHubMqttException(ErrorIds.Esp32RegionNotAligned,
                $"Region '{region.Name}' starts at 0x{region.Offset:X}, not on a 4 KiB flash sector (a multiple of 0x1000): writing it would erase the bytes before it in that sector. Nothing was written.",
                "Use an offset that is a multiple of 0x1000.", region.Name);
        }

        switch (region.Kind)
        {
            case Esp32RegionKind.Image:
                Esp32ImageValidator.Validate(region.Data, region.Name);
                break;
            case Esp32RegionKind.PartitionTable:
                NanoFramework.PartitionTable.Parse(region.Data);
                break;
            default:
                break;
        }
    }
}
