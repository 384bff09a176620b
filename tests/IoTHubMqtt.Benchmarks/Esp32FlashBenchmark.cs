using System.Diagnostics;
using System.Globalization;
using System.Text;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Benchmarks;

/// <summary>Flash benchmark: a 1 MiB firmware-like image through the flasher to the simulator held to 921600 baud.</summary>
internal static class Esp32FlashBenchmark
{
    private const int Baud = 921600;
    private const int ImageSize = 1024 * 1024;
    private const int BlockSize = 0x4000;

    public static async Task<int> RunAsync(BenchmarkArguments args)
    {
        var output = args.String("output");
        args.ThrowIfUnknown("esp32");
        var culture = CultureInfo.InvariantCulture;
        var image = IoTHubMqtt.Esp32.Simulator.FirmwareLikeBytes.Create(ImageSize, seed: 1);
        var lineRate = Baud / 10.0; // bytes a second: 8N1 = 10 bits a byte

        // Compressed streams: ours (.NET ZLibStream, SmallestSize) and an independent zlib level 9 (node's zlib, as esptool uses).
        var ours = Esp32Flasher.Compress(image);
        var peer = NodeZlib9(image);

        await using var server = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32, FlashSize = 4 * 1024 * 1024, LimitRate = true });
        // The reset into the app after the write is not timed (ResetAfter = false): the write phase is the transfer and its verification.
        var options = new Esp32FlasherOptions { BaudRate = Baud, Force = true, ResetAfter = false };

        // Full flash.
        var total = Stopwatch.StartNew();
        await using (var flasher = await Esp32Flasher.ConnectAsync(server.Url, options))
        {
            var connected = total.Elapsed;
            var simBefore = server.Simulator.BytesReceived;
            var wireBefore = flasher.WireBytesWritten;
            var write = Stopwatch.StartNew();
            var result = (await flasher.WriteAsync([new Esp32FlashRegion("firmware", 0x10000, image)])).Single();
            write.Stop();
            total.Stop();
            if (result.Status != Esp32RegionStatus.Written || !server.Simulator.Flash.AsSpan(0x10000, ImageSize).SequenceEqual(image))
            {
                throw new InvalidOperationException("The benchmark write did not land in flash.");
            }

            // The transfer: FLASH_DEFL_BEGIN to the verified MD5 (the image was compressed while the stub uploaded).
            var wire = result.WireBytes;
            var transfer = result.Duration;
            var allWire = flasher.WireBytesWritten - wireBefore;
            var simWire = server.Simulator.BytesReceived - simBefore;

            // Re-flash of the unchanged image: a new connection, as a user would run it again.
            options.Force = false;
            var again = Stopwatch.StartNew();
            await using var second = await Esp32Flasher.ConnectAsync(server.Url, options);
            var reconnected = again.Elapsed;
            var reWrite = Stopwatch.StartNew();
            var skipped = (await second.WriteAsync([new Esp32FlashRegion("firmware", 0x10000, image)])).Single();
            reWrite.Stop();
            again.Stop();
            if (skipped.Status != Esp32RegionStatus.Skipped)
            {
                throw new InvalidOperationException("The unchanged image was rewritten.");
            }

            var ourData = DataStreamWireBytes(ours);
            var peerData = DataStreamWireBytes(peer);
            var report = new StringBuilder();
            report.AppendLine("| measure | value |");
            report.AppendLine("| --- | --- |");
            void Row(string name, string value) => report.AppendLine(string.Create(culture, $"| {name} | {value} |"));
            Row("image", $"{ImageSize:N0} bytes, firmware-like (see Program.cs)");
            Row("channel", $"simulated UART, {Baud:N0} baud, 10 bits a byte: ceiling {lineRate:N0} B/s");
            Row("zlib stream, ours (.NET ZLibStream SmallestSize)", $"{ours.Length:N0} bytes ({100.0 * ours.Length / ImageSize:0.0} % of the image)");
            Row("zlib stream, level 9 (node zlib, esptool's setting)", peer is null ? "node not found" : $"{peer.Length:N0} bytes ({100.0 * peer.Length / ImageSize:0.0} %)");
            Row("FLASH_DEFL_DATA wire bytes, ours", $"{ourData!.Value:N0}");
            Row("FLASH_DEFL_DATA wire bytes, same framing over the level-9 stream", peerData is null ? "n/a" : $"{peerData:N0} (ours {100.0 * ourData!.Value / peerData.Value:0.00} %)");
            Row("transfer (FLASH_DEFL_BEGIN to verified MD5): host wire bytes, SLIP framing included", $"{wire:N0}");
            Row("transfer: time", $"{transfer.TotalSeconds:0.000} s");
            Row("transfer: wire rate", $"{wire / transfer.TotalSeconds:N0} B/s = {100.0 * wire / transfer.TotalSeconds / lineRate:0.0} % of the line rate");
            Row("transfer: image rate", $"{ImageSize / transfer.TotalSeconds:N0} B/s ({ImageSize / transfer.TotalSeconds / lineRate:0.00} x the line rate)");
            Row("WriteAsync: MD5 check, stub upload at 115200 (compressing meanwhile), baud change, transfer", $"{write.Elapsed.TotalSeconds:0.000} s, {allWire:N0} wire bytes (simulator received {simWire:N0})");
            Row("full flash end to end (connect: sync, detect, flash id at 115200; then WriteAsync)", $"{total.Elapsed.TotalSeconds:0.000} s (connect {connected.TotalSeconds:0.000} s)");
            Row("re-flash unchanged image: WriteAsync (MD5 through the ROM, no stub)", $"{reWrite.Elapsed.TotalSeconds:0.000} s");
            Row("re-flash unchanged image: end to end", $"{again.Elapsed.TotalSeconds:0.000} s (connect {reconnected.TotalSeconds:0.000} s) = {100.0 * again.Elapsed.TotalSeconds / total.Elapsed.TotalSeconds:0.0} % of a full flash");

            var targets = new StringBuilder();
            targets.AppendLine(string.Create(culture, $"- transfer wire rate >= 90 % of the line rate: {(wire / transfer.TotalSeconds / lineRate >= 0.9 ? "met" : "NOT met")}"));
            targets.AppendLine(peerData is null
                ? "- wire bytes <= the zlib-9 stream: not measured (node missing)"
                : string.Create(culture, $"- data wire bytes <= the same framing over zlib level 9: {(ourData <= peerData ? "met" : "NOT met")}; compressed stream {ours.Length:N0} <= zlib-9 stream {peer!.Length:N0}: {(ours.Length <= peer.Length ? "met" : "NOT met")}. The transfer's wire bytes ({wire:N0}, with SLIP framing and packet headers) are {100.0 * wire / peer.Length:0.00} % of the bare zlib-9 stream; esptool's wire carries the same framing on top of it."));
            targets.AppendLine(string.Create(culture, $"- unchanged re-flash < 10 % of a full flash (end to end): {(again.Elapsed.TotalSeconds < 0.1 * total.Elapsed.TotalSeconds ? "met" : "NOT met")}"));

            Console.WriteLine(report);
            Console.WriteLine(targets);
            if (output is not null)
            {
                var md = new StringBuilder();
                md.AppendLine("# ESP32 flash benchmark");
                md.AppendLine();
                md.AppendLine("A 1 MiB firmware-like image written by `Esp32Flasher` (the code under `Install-Esp32Firmware`) to the");
                md.AppendLine("ESP32 simulator (`tests/IoTHubMqtt.Esp32.Simulator`) over loopback TCP, with the simulator holding both");
                md.AppendLine("directions to the UART rate (921600 baud after the baud change, 115200 before). Numbers from one run on");
                md.AppendLine(string.Create(culture, $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, {DateTime.UtcNow:yyyy-MM-dd}."));
                md.AppendLine();
                md.AppendLine("Reproduce: `dotnet run -c Release --project tests/IoTHubMqtt.Benchmarks -- esp32 --output BenchmarkResults/esp32.md`");
                md.AppendLine();
                md.Append(report);
                md.AppendLine();
                md.AppendLine("Targets:");
                md.AppendLine();
                md.Append(targets);
                md.AppendLine();
                md.AppendLine("Notes: the simulator inflates and writes instantly, so the write phase is bounded by the wire; real flash");
                md.AppendLine("erase/program time is not modelled. The transfer is FLASH_DEFL_BEGIN to the verified MD5; the image is compressed");
                md.AppendLine("(zlib, smallest size, ~0.4 s for 1 MiB here) in the background while the stub uploads, so it is not on the wire's");
                md.AppendLine("critical path. The reset into the application afterwards (a 100 ms pulse on a real board) is not timed. The");
                md.AppendLine("level-9 comparison frames an independent zlib level 9 stream (node's zlib, the setting esptool uses) in the same");
                md.AppendLine("16 KiB FLASH_DEFL_DATA packets and SLIP escaping, so the two wire counts differ only by the compressed bytes.");
                await File.WriteAllTextAsync(output, md.ToString());
            }
        }
        return 0;
    }

    private static long? DataStreamWireBytes(byte[]? compressed)
    {
        if (compressed is null)
        {
            return null;
        }

        long total = 0;
        for (var i = 0; i * BlockSize < compressed.Length; i++)
        {
            var block = compressed.AsSpan(i * BlockSize, Math.Min(BlockSize, compressed.Length - (i * BlockSize)));
            total += Slip.Encode(Esp32Command.FlashDeflData(block, (uint)i).Encode()).Length;
        }

        return total;
    }

    private static byte[]? NodeZlib9(byte[] data)
    {
        try
        {
            var start = new ProcessStartInfo("node", ["-e", "const z=require('zlib');const c=[];process.stdin.on('data',d=>c.push(d)).on('end',()=>process.stdout.write(z.deflateSync(Buffer.concat(c),{level:9})))"])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            using var node = Process.Start(start)!;
            var output = new MemoryStream();
            var copy = node.StandardOutput.BaseStream.CopyToAsync(output);
            node.StandardInput.BaseStream.Write(data);
            node.StandardInput.Close();
            copy.Wait(TimeSpan.FromSeconds(30));
            node.WaitForExit(30000);
            return output.ToArray();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
