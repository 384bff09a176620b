using System.Buffers.Binary;
using System.Net.Sockets;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>
/// The simulator's wire behaviour checked frame by frame against Espressif's documentation of the ROM loader and the stub
/// (https://docs.espressif.com/projects/esptool/en/latest/esp32/advanced-topics/serial-protocol.html) and traces of real chips.
/// </summary>
public sealed class SimulatorFidelityTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private sealed class RawLink : IAsyncDisposable
    {
        private readonly TcpClient client = new();
        private readonly SlipDecoder decoder = new();
        private readonly Queue<byte[]> frames = new();
        private NetworkStream stream = null!;

        public static async Task<RawLink> OpenAsync(SimulatorServer server)
        {
            var link = new RawLink();
            await link.client.ConnectAsync("127.0.0.1", server.TcpPort, Token);
            link.stream = link.client.GetStream();
            return link;
        }

        public Task SendAsync(Esp32Command command) => stream.WriteAsync(Slip.Encode(command.Encode()), Token).AsTask();

        /// <summary>Every frame that arrives until the line has been quiet for a while.</summary>
        public async Task<List<byte[]>> FramesAsync(int expectAtLeast)
        {
            var buffer = new byte[4096];
            while (frames.Count < expectAtLeast)
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                var n = await stream.ReadAsync(buffer, timeout.Token);
                decoder.Feed(buffer.AsSpan(0, n), frames.Enqueue);
            }

            var list = frames.ToList();
            frames.Clear();
            return list;
        }

        public async Task<Esp32Response> CommandAsync(Esp32Command command)
        {
            await SendAsync(command);
            return Esp32Response.TryDecode((await FramesAsync(1))[0])!;
        }

        public async ValueTask DisposeAsync()
        {
            await stream.DisposeAsync();
            client.Dispose();
        }
    }

    [Fact]
    public async Task RomSync_AnsweredEightTimes_WithTheRomsNonZeroValue_StubAnswersOnceWithZero()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32C3 });
        await using var link = await RawLink.OpenAsync(server);

        await link.SendAsync(Esp32Command.Sync());
        var replies = (await link.FramesAsync(8)).Select(f => Esp32Response.TryDecode(f)!).ToList();

        Assert.Equal(8, replies.Count);
        Assert.All(replies, r => Assert.Equal(Esp32Opcode.Sync, r.Opcode));
        Assert.All(replies, r => Assert.Equal(0x20120707u, r.Value)); // 01 08 04 00 07 07 12 20 00 00 00 00
        Assert.All(replies, r => Assert.Equal(4, r.Data.Length)); // the ROM's four status bytes

        await UploadAsync(link, entry: 0x4037_0000, text: [0x13, 0x00, 0x00, 0x00, 0x6F, 0x00, 0x00, 0x00], textStart: 0x4037_0000);
        await link.SendAsync(Esp32Command.Sync());
        var stub = Esp32Response.TryDecode(Assert.Single(await link.FramesAsync(1)))!;
        Assert.Equal(0u, stub.Value);
        Assert.Equal(2, stub.Data.Length); // the stub's two status bytes
    }

    [Fact]
    public async Task Esp32Rom_UnsupportedCommand_InvalidMessageRepliesUnderAnotherOpcode_Repeated()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32 });
        await using var link = await RawLink.OpenAsync(server);

        await link.SendAsync(Esp32Command.GetSecurityInfo());
        var replies = (await link.FramesAsync(8)).Select(f => Esp32Response.TryDecode(f)!).ToList();

        Assert.Equal(8, replies.Count);
        Assert.All(replies, r => Assert.NotEqual(Esp32Opcode.GetSecurityInfo, r.Opcode));
        Assert.All(replies, r => Assert.Equal([1, 0x05], r.Data[..2]));
    }

    [Theory]
    [InlineData(SimulatedChipType.Esp32, 0x3FF40014u, 40)]
    [InlineData(SimulatedChipType.Esp32S2, 0x3F400014u, 40)]
    [InlineData(SimulatedChipType.Esp32C3, 0x60000014u, 40)]
    [InlineData(SimulatedChipType.Esp32H2, 0x60000014u, 32)]
    public async Task UartClockDivider_ReadableAndTellsTheCrystal(SimulatedChipType chip, uint register, int crystalMhz)
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = chip });
        await using var link = await RawLink.OpenAsync(server);

        var divider = (await link.CommandAsync(Esp32Command.ReadReg(register))).Value & 0xFFFFF;

        // How esptool estimates the crystal: divider x baud rate.
        Assert.Equal(crystalMhz, (int)Math.Round(divider * 115200 / 1e6));
    }

    [Fact]
    public async Task AnyUploadedProgram_RunsAsTheStub_AndTheStubTakesBothFlashBeginLayouts()
    {
        await using var server = new SimulatorServer(new SimulatorOptions { Chip = SimulatedChipType.Esp32S3 });
        await using var link = await RawLink.OpenAsync(server);

        // Not byte-identical to any stub the simulator knows: a different build runs as a stub all the same.
        await UploadAsync(link, entry: 0x4038_0010, text: Enumerable.Range(0, 300).Select(i => (byte)i).ToArray(), textStart: 0x4038_0000);
        Assert.True(server.Simulator.StubRunning);

        var fourWords = await link.CommandAsync(Esp32Command.FlashBegin(0x1000, 1, 0x4000, 0x10000, encryptedWord: false));
        var fiveWords = await link.CommandAsync(Esp32Command.FlashBegin(0x1000, 1, 0x4000, 0x20000, encryptedWord: true));

        Assert.Equal([0, 0], fourWords.Data);
        Assert.Equal([0, 0], fiveWords.Data);
    }

    [Fact]
    public async Task MemEnd_EntryOutsideUploadedRam_ChipStopsAnswering()
    {
        await using var server = new SimulatorServer();
        await using var link = await RawLink.OpenAsync(server);

        await UploadAsync(link, entry: 0x5000_0000, text: [1, 2, 3, 4], textStart: 0x4008_0000, expectGreeting: false);

        Assert.False(server.Simulator.StubRunning);
        Assert.Equal(SimulatedBootMode.Application, server.Simulator.Mode);
    }

    private static async Task UploadAsync(RawLink link, uint entry, byte[] text, uint textStart, bool expectGreeting = true)
    {
        Assert.Equal(Esp32Opcode.MemBegin, (await link.CommandAsync(Esp32Command.MemBegin((uint)text.Length, 1, 0x1800, textStart))).Opcode);
        Assert.Equal(Esp32Opcode.MemData, (await link.CommandAsync(Esp32Command.MemData(text, 0))).Opcode);
        await link.SendAsync(Esp32Command.MemEnd(entry));
        var frames = await link.FramesAsync(expectGreeting ? 2 : 1);
        Assert.Equal(Esp32Opcode.MemEnd, Esp32Response.TryDecode(frames[0])!.Opcode);
        if (expectGreeting)
        {
            Assert.Equal("OHAI"u8.ToArray(), frames[1]);
        }
    }
}
