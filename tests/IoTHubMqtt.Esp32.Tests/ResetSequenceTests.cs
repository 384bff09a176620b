using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Core.Esp32.Transport;

namespace IoTHubMqtt.Esp32.Tests;

/// <summary>The reset sequences line by line, on a clock that records when each change happens (no real waiting).</summary>
public sealed class ResetSequenceTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>A port that records every line write: "D1", "R0", "U1,0" (both at once), with the clock's time.</summary>
    private sealed class RecordingPort(JumpingClock clock, bool together = false) : IEsp32Port
    {
        public List<(TimeSpan At, string Step)> Steps { get; } = [];

        public string Name => "recording";

        public bool HasControlLines => true;

        public bool CanSetControlLinesTogether => together;

        public int BaudRate => 115200;

        public ValueTask SetControlLinesAsync(bool? dtr, bool? rts, CancellationToken cancellationToken = default)
        {
            if (dtr is { } d)
            {
                Steps.Add((clock.Elapsed, d ? "D1" : "D0"));
            }

            if (rts is { } r)
            {
                Steps.Add((clock.Elapsed, r ? "R1" : "R0"));
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask SetControlLinesTogetherAsync(bool dtr, bool rts, CancellationToken cancellationToken = default)
        {
            Steps.Add((clock.Elapsed, $"U{(dtr ? 1 : 0)},{(rts ? 1 : 0)}"));
            return ValueTask.CompletedTask;
        }

        public ValueTask<int> ReadAsync(Memory<byte> buffer, TimeSpan timeout, CancellationToken cancellationToken = default) => ValueTask.FromResult(0);

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask SetBaudRateAsync(int baudRate, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public void DiscardInput()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        /// <summary>The steps as esptool's custom_reset_sequence strings write them, waits as W{seconds}.</summary>
        public string Sequence()
        {
            var parts = new List<string>();
            var last = TimeSpan.Zero;
            foreach (var (at, step) in Steps)
            {
                if (at > last)
                {
                    parts.Add($"W{(at - last).TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
                    last = at;
                }

                parts.Add(step);
            }

            return string.Join('|', parts);
        }
    }

    [Fact]
    public async Task Classic_IsEsptoolsDocumentedSequence()
    {
        var clock = new JumpingClock();
        var port = new RecordingPort(clock);

        await new ClassicReset(ResetStrategy.DefaultResetDelay).ResetAsync(port, clock, Token);

        Assert.Equal("D0|R1|W0.1|D1|R0|W0.05|D0", port.Sequence());
    }

    [Fact]
    public async Task UsbJtagSerial_PassesThroughBothLinesAsserted_NeverBothReleasedMidway()
    {
        var clock = new JumpingClock();
        var port = new RecordingPort(clock);

        await new UsbJtagSerialReset().ResetAsync(port, clock, Token);

        Assert.Equal("R0|D0|W0.1|D1|R0|W0.1|R1|D0|R1|W0.1|R0|D0", port.Sequence());
        var states = new List<(bool Dtr, bool Rts)>();
        bool dtr = false, rts = false;
        foreach (var (_, step) in port.Steps)
        {
            if (step[0] == 'D')
            {
                dtr = step[1] == '1';
            }
            else
            {
                rts = step[1] == '1';
            }

            states.Add((dtr, rts));
        }

        var reset = states.IndexOf((true, true));
        Assert.True(reset > 0, "the sequence passes through DTR=RTS=1");
        Assert.Equal((true, false), states[reset - 1]); // straight from IO0 low into reset
    }

    [Fact]
    public async Task OnWindows_EveryRtsChangeIsFollowedByDtrWithItsValue()
    {
        var clock = new JumpingClock();
        var port = new RecordingPort(clock);

        await new ClassicReset(ResetStrategy.DefaultResetDelay, windows: true).ResetAsync(port, clock, Token);

        // usbser.sys sends the line state only with a DTR write: DTR is written again after each RTS change.
        Assert.Equal("D0|R1|D0|W0.1|D1|R0|D1|W0.05|D0", port.Sequence());
    }

    [Fact]
    public async Task Tight_WritesBothLinesAtOnce()
    {
        var clock = new JumpingClock();
        var port = new RecordingPort(clock, together: true);

        await new TightReset(ResetStrategy.DefaultResetDelay).ResetAsync(port, clock, Token);

        Assert.Equal("U0,0|U1,1|U0,1|W0.1|U1,0|W0.05|U0,0|D0", port.Sequence());
    }

    [Theory]
    [InlineData(false, true, null, false, "tight (50 ms),tight (550 ms),classic (50 ms),classic (550 ms)")]
    [InlineData(false, false, null, false, "classic (50 ms),classic (550 ms)")]
    [InlineData(false, true, null, true, "classic (50 ms),classic (550 ms)")]
    [InlineData(false, true, (ushort)0x1001, false, "USB-JTAG-serial")]
    [InlineData(true, true, null, false, "none")]
    public void Auto_PicksByPortAndUsbId(bool socket, bool together, ushort? productId, bool windows, string expected)
    {
        var clock = new JumpingClock();
        IEsp32Port port = socket ? new NoLinesPort() : new RecordingPort(clock, together);

        var names = ResetStrategy.For(Esp32ResetMode.Auto, port, productId, windows).Select(s => s.Name);

        Assert.Equal(expected, string.Join(',', names));
    }

    [Fact]
    public async Task HardReset_PulsesEnWithIo0High()
    {
        var clock = new JumpingClock();
        var port = new RecordingPort(clock);

        await ResetStrategy.HardResetAsync(port, clock, Token, windows: false);

        Assert.Equal("D0|R1|W0.1|R0", port.Sequence());
    }

    private sealed class NoLinesPort : IEsp32Port
    {
        public string Name => "socket://x:1";

        public bool HasControlLines => false;

        public int BaudRate => 115200;

        public ValueTask<int> ReadAsync(Memory<byte> buffer, TimeSpan timeout, CancellationToken cancellationToken = default) => ValueTask.FromResult(0);

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask SetControlLinesAsync(bool? dtr, bool? rts, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask SetBaudRateAsync(int baudRate, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public void DiscardInput()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
