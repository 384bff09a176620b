using System.IO.Compression;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Esp32;

namespace IoTHubMqtt.Core.NanoFramework;

/// <summary>
/// A nanoFramework ESP32 firmware package (a folder or a .zip): bootloader.bin, partitions_*.bin and nanoCLR.bin.
/// The partition table is parsed, so the nanoCLR goes to the table's app partition and a deployment image to the
/// deployment partition.
/// </summary>
public sealed class FirmwarePackage
{
    private FirmwarePackage(string source, byte[] bootloader, byte[] partitionTable, byte[] nanoClr)
    {
        Source = source;
        Bootloader = bootloader;
        PartitionTableImage = partitionTable;
        NanoClr = nanoClr;
        Partitions = PartitionTable.Parse(partitionTable);
    }

    public string Source { get; }
    public byte[] Bootloader { get; }
    public byte[] PartitionTableImage { get; }
    public byte[] NanoClr { get; }
    public PartitionTable Partitions { get; }

    public static FirmwarePackage Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var files = new Dictionary<string, byte[]>(StringComparer.OrdinalIgnoreCase);
        if (Directory.Exists(path))
        {
            foreach (var file in Directory.EnumerateFiles(path, "*.bin", SearchOption.AllDirectories))
            {
                files.TryAdd(Path.GetFileName(file), File.ReadAllBytes(file));
            }
        }
        else if (File.Exists(path))
        {
            try
            {
                using var zip = ZipFile.OpenRead(path);
                foreach (var entry in zip.Entries.Where(e => e.Name.EndsWith(".bin", StringComparison.OrdinalIgnoreCase)))
                {
                    using var stream = entry.Open();
                    using var copy = new MemoryStream();
                    stream.CopyTo(copy);
                    files.TryAdd(entry.Name, copy.ToArray());
                }
            }
            catch (InvalidDataException ex)
            {
                throw new IoTHubMqttException("FirmwarePackageInvalid", IoTHubErrorKind.InvalidData, $"'{path}' is not a folder or a zip file.", "Pass the unzipped firmware folder or its .zip.", path, ex);
            }
        }
        else
        {
            throw new IoTHubMqttException("FirmwarePackageNotFound", IoTHubErrorKind.NotFound, $"Firmware package '{path}' does not exist.", null, path);
        }

        byte[] Need(string what, Func<string, bool> match) =>
            files.FirstOrDefault(f => match(f.Key)).Value
            ?? throw new IoTHubMqttException("FirmwarePackageIncomplete", IoTHubErrorKind.InvalidData, $"Firmware package '{path}' has no {what}.", "A nanoFramework ESP32 package holds bootloader.bin, partitions_*.bin and nanoCLR.bin.", path);

        return new FirmwarePackage(
            path,
            Need("bootloader.bin", n => n.Equals("bootloader.bin", StringComparison.OrdinalIgnoreCase)),
            Need("partitions_*.bin", n => n.StartsWith("partition", StringComparison.OrdinalIgnoreCase)),
            Need("nanoCLR.bin", n => n.Equals("nanoCLR.bin", StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>The regions to write for <paramref name="chip"/>: bootloader at the chip's offset, table at 0x8000, nanoCLR at the app partition.</summary>
    public IReadOnlyList<Esp32FlashRegion> Regions(Esp32ChipInfo chip)
    {
        ArgumentNullException.ThrowIfNull(chip);
        var app = Partitions.AppPartition
            ?? throw new IoTHubMqttException("PartitionTableInvalid", IoTHubErrorKind.InvalidData, "The package's partition table has no app partition for nanoCLR.", null, Source);
        if (NanoClr.Length > app.Size)
        {
            throw Esp32Errors.ImageTooLarge("nanoCLR", app.Offset, NanoClr.Length, app.Size, $"'{app.Name}' partition");
        }

        return
        [
            new Esp32FlashRegion("bootloader", chip.BootloaderOffset, Bootloader),
            new Esp32FlashRegion("partition-table", PartitionTable.DefaultOffset, PartitionTableImage),
            new Esp32FlashRegion("nanoCLR", app.Offset, NanoClr),
        ];
    }

    /// <summary>
    /// A deployment image as one region filling the deployment partition: the image, then 0xFF (erased) up to the
    /// partition end, so the write erases the rest and the MD5 check covers the whole partition.
    /// </summary>
    public static Esp32FlashRegion DeploymentRegion(PartitionTable table, byte[] image)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(image);
        var partition = table.DeploymentPartition;
        return PartitionRegion(partition, image, "deployment");
    }

    /// <summary>Any byte region for a named/subtype partition (bounds-checked, 0xFF-filled to the partition end).</summary>
    public static Esp32FlashRegion PartitionRegion(PartitionEntry partition, byte[] image, string name)
    {
        ArgumentNullException.ThrowIfNull(partition);
        ArgumentNullException.ThrowIfNull(image);
        if (image.Length > partition.Size)
        {
            throw Esp32Errors.ImageTooLarge(name, partition.Offset, image.Length, partition.Size, $"'{partition.Name}' partition");
        }

        var data = new byte[partition.Size];
        data.AsSpan().Fill(0xFF);
        image.CopyTo(data, 0);
        return new Esp32FlashRegion(name, partition.Offset, data);
    }
}
