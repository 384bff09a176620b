using System.Globalization;
using System.Text;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.NanoFramework;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>What a user asks Install-Esp32Firmware for: files by path (already resolved), and the flash-wide choices.</summary>
public sealed class Esp32InstallRequest
{
    /// <summary>A nanoFramework firmware package (folder or .zip).</summary>
    public string? PackagePath { get; init; }

    /// <summary>Files to write at offsets (esptool's offset=file pairs).</summary>
    public IReadOnlyList<(uint Offset, string Path)> Images { get; init; } = [];

    /// <summary>The <see cref="Images"/> are raw data (a filesystem or NVS image), written as given: never inferred.</summary>
    public bool Raw { get; init; }

    /// <summary>A nanoFramework deployment image for the deployment partition.</summary>
    public string? DeploymentImagePath { get; init; }

    /// <summary>The device app's configuration, for the config partition.</summary>
    public DeviceConfiguration? Configuration { get; init; }

    /// <summary>Erase the whole flash before writing.</summary>
    public bool Erase { get; init; }

    /// <summary>The chip the user expects (Auto: any); images built for another chip are refused before the port opens.</summary>
    public Esp32Chip Chip { get; init; } = Esp32Chip.Auto;

    /// <summary>The flash size the user gave, when not detected: the cap for files and partition tables.</summary>
    public long? FlashSize { get; init; }
}

/// <summary>
/// The install plan: every file read and validated, every region whose place is known laid out, the partition the
/// deployment image and the configuration go to found in the package's (or the images') partition table, or left to the
/// table read from the board. Built without touching a port, so <c>-WhatIf</c> can print it; <see cref="Esp32Installer"/>
/// carries it out (connect, check the chip, read the board's table when needed, skip regions whose flash MD5 already
/// matches, write, verify, reset).
/// </summary>
public sealed class Esp32InstallPlan
{
    private Esp32InstallPlan(IReadOnlyList<Esp32FlashRegion> regions, PartitionTable? table, byte[]? deployment, DeviceConfiguration? configuration, bool erase, Esp32ChipInfo? chip, FirmwarePackage? package)
    {
        Regions = regions;
        Table = table;
        Deployment = deployment;
        Configuration = configuration;
        Erase = erase;
        ImageChip = chip;
        Package = package;
    }

    /// <summary>Regions whose offset is known now (ordered by offset).</summary>
    public IReadOnlyList<Esp32FlashRegion> Regions { get; }

    /// <summary>The partition table that comes with the plan (package or images); null = read from the board.</summary>
    public PartitionTable? Table { get; }

    /// <summary>A deployment image still to be placed (no partition table in the plan): goes where the board's table says.</summary>
    public byte[]? Deployment { get; }

    /// <summary>A configuration still to be placed in the board's config partition.</summary>
    public DeviceConfiguration? Configuration { get; }

    public bool Erase { get; }

    /// <summary>The chip the images are built for (from their headers), or null when they do not say.</summary>
    public Esp32ChipInfo? ImageChip { get; }

    /// <summary>The firmware package, whose bootloader goes to the connected chip's bootloader offset.</summary>
    public FirmwarePackage? Package { get; }

    /// <summary>True when the plan needs the partition table on the board (deployment image or configuration with no table given).</summary>
    public bool NeedsBoardPartitionTable => Deployment is not null || Configuration is not null;

    /// <summary>Reads and validates everything in <paramref name="request"/>; nothing here opens a port.</summary>
    public static Esp32InstallPlan Create(Esp32InstallRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var limit = request.FlashSize ?? FirmwarePackage.DefaultSizeLimit;
        var regions = new List<Esp32FlashRegion>();
        PartitionTable? table = null;
        Esp32ChipInfo? chip = null;
        FirmwarePackage? package = null;

        if (request.PackagePath is { } packagePath)
        {
            package = FirmwarePackage.Load(packagePath, limit);
            table = package.Partitions;
            chip = package.Chip;
            regions.AddRange(package.Regions(package.Chip));
        }

        foreach (var (offset, path) in request.Images)
        {
            var name = Path.GetFileName(path);
            var data = ReadFile(path, limit, ErrorIds.Esp32ImageNotFound);
            var kind = request.Raw ? Esp32RegionKind.Raw
                : offset == PartitionTable.DefaultOffset ? Esp32RegionKind.PartitionTable
                : Esp32RegionKind.Image;
            var region = new Esp32FlashRegion(name, offset, data) { Kind = kind };
            Esp32RegionCheck.Validate(region);
            if (kind == Esp32RegionKind.PartitionTable)
            {
                table = PartitionTable.Parse(data);
                region = region with { Data = data.Length > PartitionTable.MaxLength ? data[..PartitionTable.MaxLength] : data };
            }
            else if (kind == Esp32RegionKind.Image)
            {
                var imageChip = Esp32ChipInfo.All.First(c => c.ImageChipId == Esp32ImageValidator.Validate(data, name).ChipId);
                if (chip is not null && chip.ImageChipId != imageChip.ImageChipId)
                {
                    throw Esp32Errors.InvalidImage(ErrorIds.Esp32ImageChipMismatch,
                        $"'{name}' is built for {imageChip.Name}, the other images for {chip.Name}. Nothing was written.", name);
                }

                chip = imageChip;
            }

            regions.Add(region);
        }

        if (request.Chip != Esp32Chip.Auto && chip is not null && chip.Chip != request.Chip)
        {
            throw new IoTHubMqttException(ErrorIds.Esp32ImageChipMismatch,
                $"The images are built for {chip.Name}, not for the {Esp32ChipInfo.Get(request.Chip).Name} given by -Chip. Nothing was written.",
                $"Use the firmware built for {Esp32ChipInfo.Get(request.Chip).Name}, or -Chip {chip.Chip}.", chip.Name);
        }

        if (request.FlashSize is { } flashSize)
        {
            table?.EnsureFits(flashSize);
        }

        byte[]? deployment = null;
        if (request.DeploymentImagePath is { } deploymentPath)
        {
            deployment = ReadFile(deploymentPath, limit, ErrorIds.NanoFrameworkPathNotFound);
            DeploymentImage.Validate(deployment, Path.GetFileName(deploymentPath));
        }

        var configuration = request.Configuration;
        if (table is not null)
        {
            if (deployment is not null)
            {
                regions.Add(FirmwarePackage.DeploymentRegion(table, deployment));
                deployment = null;
            }

            if (configuration is not null)
            {
                regions.Add(ConfigurationRegion(table, configuration));
                configuration = null;
            }
        }

        if (table is not null)
        {
            CheckPartitionBounds(regions, table);
        }

        CheckOverlaps(regions);
        return new Esp32InstallPlan(regions.OrderBy(r => r.Offset).ToList(), table, deployment, configuration, request.Erase, chip, package);
    }

    /// <summary>The regions that go where <paramref name="boardTable"/> (read from the board) says.</summary>
    public IReadOnlyList<Esp32FlashRegion> PlaceOnBoardTable(PartitionTable boardTable)
    {
        ArgumentNullException.ThrowIfNull(boardTable);
        var placed = new List<Esp32FlashRegion>();
        if (Deployment is not null)
        {
            placed.Add(FirmwarePackage.DeploymentRegion(boardTable, Deployment));
        }

        if (Configuration is not null)
        {
            placed.Add(ConfigurationRegion(boardTable, Configuration));
        }

        return placed;
    }

    /// <summary>The plan in words, for -WhatIf and -Confirm.</summary>
    public string Describe()
    {
        var text = new StringBuilder(Erase ? "Erase the whole flash, then write " : "Write ");
        var parts = Regions.Select(r => r.Name == "bootloader" && Package is not null
            ? $"bootloader at the chip's bootloader offset ({r.Data.Length} bytes)"
            : r.ToString()).ToList();
        if (Deployment is not null)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"deployment ({Deployment.Length} bytes) to the deployment partition of the board's partition table"));
        }

        if (Configuration is not null)
        {
            parts.Add($"the device configuration to the '{DeviceConfigurationFormat.PartitionName}' partition of the board's partition table");
        }

        text.Append(string.Join(", ", parts));
        text.Append("; regions whose flash already matches are skipped (MD5), each written region is verified.");
        return text.ToString();
    }

    /// <summary>The littlefs image of the config partition (by name, else the data partition of subtype littlefs or spiffs).</summary>
    public static Esp32FlashRegion ConfigurationRegion(PartitionTable table, DeviceConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(configuration);
        var partition = table.Find(DeviceConfigurationFormat.PartitionName)
            ?? table.Find(PartitionEntry.TypeData, 0x83)
            ?? table.Find(PartitionEntry.TypeData, 0x82)
            ?? throw new IoTHubMqttException(ErrorIds.PartitionNotFound,
                $"The partition table has no '{DeviceConfigurationFormat.PartitionName}' partition for the device configuration.",
                "Flash a nanoFramework firmware package whose partition table has a config (littlefs) partition.", DeviceConfigurationFormat.PartitionName);
        return FirmwarePackage.PartitionRegion(partition, DeviceConfigurationFormat.BuildConfigPartition(configuration, (int)partition.Size), DeviceConfigurationFormat.PartitionName);
    }

    private static byte[] ReadFile(string path, long limit, string notFoundErrorId)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new IoTHubMqttException(notFoundErrorId, $"'{path}' does not exist.", null, path);
        }

        if (info.Length > limit)
        {
            throw new IoTHubMqttException(ErrorIds.Esp32ImageTooLarge,
                $"'{info.Name}' is {info.Length} bytes, larger than the flash ({limit} bytes). Nothing was written.", "Use an image built for this board.", path);
        }

        return File.ReadAllBytes(path);
    }

    /// <summary>A region that starts inside a partition of the table must end inside it: past its end it overwrites the next one.</summary>
    private static void CheckPartitionBounds(List<Esp32FlashRegion> regions, PartitionTable table)
    {
        foreach (var region in regions.Where(r => r.Kind != Esp32RegionKind.PartitionTable))
        {
            var partition = table.Entries.FirstOrDefault(p => region.Offset >= p.Offset && region.Offset < (long)p.Offset + p.Size);
            var room = partition is null ? 0 : (long)partition.Offset + partition.Size - region.Offset;
            if (partition is not null && region.Data.Length > room)
            {
                throw Esp32Errors.ImageTooLarge(region.Name, region.Offset, region.Data.Length, room, $"'{partition.Name}' partition");
            }
        }
    }

    private static void CheckOverlaps(List<Esp32FlashRegion> regions)
    {
        var ordered = regions.OrderBy(r => r.Offset).ToList();
        for (var i = 1; i < ordered.Count; i++)
        {
            if (ordered[i - 1].Offset + (long)ordered[i - 1].Data.Length > ordered[i].Offset)
            {
                throw Esp32Errors.InvalidImage(ErrorIds.Esp32RegionsOverlap, $"Regions '{ordered[i - 1].Name}' and '{ordered[i].Name}' overlap at 0x{ordered[i].Offset:X}. Nothing was written.", ordered[i].Name);
            }
        }
    }
}
