using FsCheck;
using FsCheck.Fluent;
using IoTHubMqtt.Core.Esp32;

namespace IoTHubMqtt.Esp32.Tests;

public sealed class CodecTests
{
    [Fact]
    public void SlipEncode_EscapesDelimiterAndEscape()
    {
        Assert.Equal(new byte[] { 0xC0, 0x01, 0xDB, 0xDC, 0x02, 0xDB, 0xDD, 0xC0 }, Slip.Encode([0x01, 0xC0, 0x02, 0xDB]));
    }

    [Fact]
    public void SlipDecoder_FrameSplitAcrossFeeds_YieldsOnce()
    {
        var frames = new List<byte[]>();
        var decoder = new SlipDecoder();
        var encoded = Slip.Encode([0xC0, 0xDB, 0x42]);
        decoder.Feed(encoded.AsSpan(0, 3), frames.Add);
        Assert.Empty(frames);
        decoder.Feed(encoded.AsSpan(3), frames.Add);
        Assert.Equal(new byte[] { 0xC0, 0xDB, 0x42 }, Assert.Single(frames));
    }

    [Fact]
    public void SlipDecoder_BootLogBeforeFrame_IsNoise()
    {
        var input = "rst:0x1 (POWERON_RESET),boot:0x13\r\nwaiting for download\r\n"u8.ToArray().Concat(Slip.Encode([1, 2, 3])).ToArray();
        var decoder = new SlipDecoder();
        var frames = new List<byte[]>();
        decoder.Feed(input, frames.Add);
        Assert.Equal(new byte[] { 1, 2, 3 }, Assert.Single(frames));
        Assert.Contains("waiting for download", System.Text.Encoding.ASCII.GetString(decoder.Noise.ToArray()), StringComparison.Ordinal);
    }

    [Fact]
    public void Slip_AnyPayloads_RoundTripInOneStream()
    {
        Prop.ForAll(Arb.From(ArbMap.Default.GeneratorFor<byte[][]>().Select(a => a.Where(p => p is { Length: > 0 }).ToArray())), payloads =>
        {
            var stream = payloads.SelectMany(p => Slip.Encode(p)).ToArray();
            var decoded = SlipDecoder.DecodeAll(stream);
            return decoded.Count == payloads.Length && decoded.Zip(payloads).All(x => x.First.AsSpan().SequenceEqual(x.Second));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void SlipDecoder_RandomGarbage_NoCrashAndBoundedFrames()
    {
        Prop.ForAll(Arb.From(ArbMap.Default.GeneratorFor<byte[]>()), Arb.From(Gen.Choose(1, 64)), (garbage, limit) =>
        {
            var decoder = new SlipDecoder(limit);
            var frames = new List<byte[]>();
            decoder.Feed(garbage, frames.Add);
            decoder.Feed([Slip.End], frames.Add); // a delimiter (sent after a timeout) resynchronises after any input
            decoder.Feed(Slip.Encode([7]), frames.Add);
            return frames.All(f => f.Length <= limit) && frames.Count > 0 && frames[^1].SequenceEqual(new byte[] { 7 }) && decoder.Noise.Count <= 4096;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void SlipDecoder_InvalidEscape_DropsFrameAndCounts()
    {
        var frames = SlipDecoder.DecodeAll([0xC0, 0x01, 0xDB, 0x00, 0xC0, 0xC0, 0x05, 0xC0]);
        Assert.Equal(new byte[] { 0x05 }, Assert.Single(frames));
    }

    [Fact]
    public void SyncCommand_EncodesDocumentedPacket()
    {
        var packet = Esp32Command.Sync().Encode();
        Assert.Equal(new byte[] { 0x00, 0x08, 0x24, 0x00, 0, 0, 0, 0, 0x07, 0x07, 0x12, 0x20 }, packet[..12]);
        Assert.Equal(44, packet.Length);
        Assert.All(packet[12..], b => Assert.Equal(0x55, b));
    }

    [Fact]
    public void DataCommand_ChecksumIsEfXorPayload()
    {
        var command = Esp32Command.FlashDeflData([0x01, 0x02, 0xFF], 7);
        Assert.Equal((uint)(0xEF ^ 0x01 ^ 0x02 ^ 0xFF), command.Checksum);
        var decoded = Esp32Command.TryDecode(command.Encode());
        Assert.NotNull(decoded);
        Assert.Equal(Esp32Opcode.FlashDeflData, decoded.Opcode);
        Assert.Equal(7u, BitConverter.ToUInt32(decoded.Data, 4));
    }

    [Fact]
    public void Response_StatusAfterData_RomAndStubLengths()
    {
        var rom = Esp32Response.TryDecode(new Esp32Response(Esp32Opcode.SpiFlashMd5, 0, [.. new byte[32], 0, 0, 0, 0]).Encode())!;
        Assert.True(rom.Status(32).Ok);
        var failed = Esp32Response.TryDecode(new Esp32Response(Esp32Opcode.FlashDeflData, 0, [1, 0xC7]).Encode())!;
        Assert.Equal((false, (byte)0xC7), failed.Status(0));
        Assert.Equal(Esp32RomErrorKind.InflateError, Esp32RomError.FromCode(0xC7));
        Assert.Equal(Esp32RomErrorKind.Other, Esp32RomError.FromCode(0x42));
    }

    [Fact]
    public void Timeouts_ScaleWithSize()
    {
        Assert.Equal(TimeSpan.FromSeconds(3), Esp32Command.TimeoutFor(Esp32Opcode.SpiFlashMd5, 1000));
        Assert.True(Esp32Command.TimeoutFor(Esp32Opcode.SpiFlashMd5, 16_000_000) > TimeSpan.FromSeconds(100));
        Assert.True(Esp32Command.TimeoutFor(Esp32Opcode.EraseFlash) >= TimeSpan.FromSeconds(60));
    }

    [Fact]
    public void PatchHeader_SetsSizeAndRecomputesAppendedSha256()
    {
        var image = TestImages.Bootloader(0, hashAppended: true);
        var patched = Esp32Image.PatchHeader(image, Esp32FlashMode.Dio, 16 * 1024 * 1024, null);
        Assert.Equal(2, patched[2]);
        Assert.Equal(4, patched[3] >> 4);
        var end = Esp32Image.HashedLength(patched)!.Value;
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(patched.AsSpan(0, end)), patched.AsSpan(end, 32).ToArray());
        Assert.NotEqual(image.AsSpan(end, 32).ToArray(), patched.AsSpan(end, 32).ToArray());
    }
}
