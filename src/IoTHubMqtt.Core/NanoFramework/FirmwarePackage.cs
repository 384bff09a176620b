using System.IO.Compression;
using System.IO.Hashing;
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
    /// <summary>
    /// The most a package entry or file may hold when no flash size is known: 16 MiB, the largest flash of the boards
    /// nanoFramework builds ESP32 firmware for. A package is inflated as a stream and stops at this cap, so a zip bomb fails
    /// fast with bounded memory.
    /// </summary>
    public const long DefaultSizeLimit = 16L * 1024 * 1024;

    private FirmwarePackage(string source, byte[] bootloader, byte[] partitionTable, byte[] nanoClr)
    {
        Source = source;
        Bootloader = bootloader;
        PartitionTableImage = partitionTable.Length > PartitionTable.MaxLength ? partitionTable[..PartitionTable.MaxLength] : partitionTable;
        NanoClr = nanoClr;
        Partitions = Checked("partitions_*.bin", () => PartitionTable.Parse(partitionTable));
        BootloaderImage = Checked("bootloader.bin", () => Esp32ImageValidator.Validate(bootloader, $"bootloader.bin in '{source}'"));
        NanoClrImage = Checked("nanoCLR.bin", () => Esp32ImageValidator.Validate(nanoClr, $"nanoCLR.bin in '{source}'"));
        if (BootloaderImage.ChipId != NanoClrImage.ChipId)
        {
            throw Invalid($"its bootloader is built for {Esp32ChipInfo.NameForImageChipId(BootloaderImage.ChipId)} but its nanoCLR for {Esp32ChipInfo.NameForImageChipId(NanoClrImage.ChipId)}.");
        }

        Chip = Esp32ChipInfo.All.First(c => c.ImageChipId == BootloaderImage.ChipId);
        if (Chip.BootloaderOffset + (long)bootloader.Length > PartitionTable.DefaultOffset)
        {
            throw Esp32Errors.ImageTooLarge("bootloader", Chip.BootloaderOffset, bootloader.Length, PartitionTable.DefaultOffset - Chip.BootloaderOffset, "space before the partition table");
        }

        var app = Partitions.AppPartition
            ?? throw new IoTHubMqttException(ErrorIds.PartitionTableInvalid, "The package's partition table has no app partition for nanoCLR.", null, Source);
        if (NanoClr.Length > app.Size)
        {
            throw Esp32Errors.ImageTooLarge("nanoCLR", app.Offset, NanoClr.Length, app.Size, $"'{app.Name}' partition");
        }
    }

    public string Source { get; }
    public byte[] Bootloader { get; }
    public byte[] PartitionTableImage { get; }
    public byte[] NanoClr { get; }
    public PartitionTable Partitions { get; }

    /// <summary>The chip the package is built for (from its images' headers).</summary>
    public Esp32ChipInfo Chip { get; }

    public Esp32ImageInfo BootloaderImage { get; }

    public Esp32ImageInfo NanoClrImage { get; }

    /// <summary>
    /// Reads and validates a package (a folder or a .zip). Zip entries are inflated as streams, each CRC-32 checked, and no
    /// file or entry may exceed <paramref name="sizeLimit"/> (the target's flash size when known).
    /// </summary>
    public static FirmwarePackage Load(string path, long sizeLimit = DefaultSizeLimit)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var files = new Dictionary<string, byte[]>(StringComparer.OrdinalIgnoreCase);
        if (Directory.Exists(path))
        {
            foreach (var file in Directory.EnumerateFiles(path, "*.bin", SearchOption.AllDirectories))
            {
                var length = new FileInfo(file).Length;
                if (length > sizeLimit)
                {
                    throw TooLarge(path, Path.GetFileName(file), length, sizeLimit);
                }

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
                    if (!files.ContainsKey(entry.Name))
                    {
                        files.Add(entry.Name, ReadEntry(path, entry, sizeLimit));
                    }
                }
            }
            catch (InvalidDataException ex)
            {
                throw new IoTHubMqttException(ErrorIds.FirmwarePackageInvalid, $"'{path}' is not a folder or a readable zip file: {ex.Message}", "Pass the unzipped firmware folder or its .zip.", path, ex);
            }
        }
        else
        {
            throw new IoTHubMqttException(ErrorIds.FirmwarePackageNotFound, $"Firmware package '{path}' does not exist.", null, path);
        }

        byte[] Need(string what, Func<string, bool> match) =>
            files.FirstOrDefault(f => match(f.Key)).Value
            ?? throw new IoTHubMqttException(ErrorIds.FirmwarePackageIncomplete, $"Firmware package '{path}' has no {what}.", "A nanoFramework ESP32 package holds bootloader.bin, partitions_*.bin and nanoCLR.bin.", path);

        return new FirmwarePackage(
            path,
            Need("bootloader.bin", n => n.Equals("bootloader.bin", StringComparison.OrdinalIgnoreCase)),
            Need("partitions_*.bin", n => n.StartsWith("partition", StringComparison.OrdinalIgnoreCase)),
            Need("nanoCLR.bin", n => n.Equals("nanoCLR.bin", StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>Inflates one entry as a stream, stopping at <paramref name="sizeLimit"/>, and checks its CRC-32.</summary>
    private static byte[] ReadEntry(string path, ZipArchiveEntry entry, long sizeLimit)
    {
        if (entry.Length > sizeLimit)
        {
            throw TooLarge(path, entry.FullName, entry.Length, sizeLimit);
        }

        var crc = new Crc32();
        using var output = new MemoryStream((int)Math.Min(entry.Length, sizeLimit));
        try
        {
            using var input = entry.Open();
            var buffer = new byte[81920];
            int n;
            while ((n = input.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (output.Length + n > sizeLimit)
                {
                    // The entry inflates to more than its header said (or than any flash holds): stop here.
                    throw TooLarge(path, entry.FullName, output.Length + n, sizeLimit);
                }

                crc.Append(buffer.AsSpan(0, n));
                output.Write(buffer, 0, n);
            }
        }
        catch (InvalidDataException ex)
        {
            throw Corrupt(path, entry, ex);
        }

        if (output.Length != entry.Length || crc.GetCurrentHashAsUInt32() != entry.Crc32)
        {
            throw Corrupt(path, entry, null);
        }

        return output.ToArray();
    }

    private static IoTHubMqttException Corrupt(string path, ZipArchiveEntry entry, Exception? inner) => new(
        ErrorIds.FirmwarePackageCorrupt,
        $"'{entry.FullName}' in '{path}' is corrupt: its contents do not match the CRC-32 and length in the zip directory. Nothing was written.",
        "Download the firmware package again.", path, inner);


    private static IoTHubMqttException TooLarge(string path, string entry, long length, long limit) => new(
        ErrorIds.FirmwarePackageTooLarge,
        $"'{entry}' in '{path}' is {length} bytes or more, larger than any flash it could be written to ({limit} bytes). Nothing was written.",
        "Use a nanoFramework firmware package for this board.", path);

    private T Checked<T>(string file, Func<T> check)
    {
        try
        {
            return check();
        }
        catch (IoTHubMqttException ex) when (ex.ErrorId == ErrorIds.PartitionTableInvalid)
        {
            throw new IoTHubMqttException(ex.ErrorId, ex.Kind, $"{file} in '{Source}': {ex.Message}", ex.RecommendedAction, Source, ex);
        }
    }

    private IoTHubMqttException Invalid(string why) => new(ErrorIds.FirmwarePackageInvalid, $"Firmware package '{Source}' is not usable: {why}", "Use the package built for this board.", Source);

    /// <summary>The regions to write for <paramref name="chip"/>: bootloader at the chip's offset, table at 0x8000, nanoCLR at the app partition.</summary>
    public IReadOnlyList<Esp32FlashRegion> Regions(Esp32ChipInfo chip)
    {
        ArgumentNullException.ThrowIfNull(chip);
        if (chip.ImageChipId != Chip.ImageChipId)
        {
            throw Esp32Errors.ImageChipMismatch("bootloader", Chip.ImageChipId, chip.Chip);
        }

        var app = Partitions.AppPartition!;
        return
        [
            new Esp32FlashRegion("bootloader", chip.BootloaderOffset, Bootloader) { Kind = Esp32RegionKind.Image },
            new Esp32FlashRegion("partition-table", PartitionTable.DefaultOffset, PartitionTableImage) { Kind = Esp32RegionKind.PartitionTable },
            new Esp32FlashRegion("nanoCLR", app.Offset, NanoClr) { Kind = Esp32RegionKind.Image },
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
        if (image.Length == 0)
        {
            throw Esp32Errors.InvalidImage(ErrorIds.Esp32EmptyImage, $"The image for '{name}' is empty; writing it would only erase the '{partition.Name}' partition. Nothing was written.", name);
        }

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
