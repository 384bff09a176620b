using System.Buffers.Binary;

namespace IoTHubMqtt.Esp32.Simulator;

/// <summary>Raised by a transport that carries the modem lines (an RFC 2217 server): DTR and RTS as the host set them.</summary>
public interface ISerialLineEvents
{
    event Action<bool, bool>? ControlLinesChanged;
}

/// <summary>A transport that knows the baud rate the host's end of the line runs at (0 = unknown, as on raw TCP).</summary>
public interface IHostBaudRate
{
    int HostBaudRate { get; }
}

/// <summary>
/// The server side of RFC 2217 (Telnet COM-PORT-OPTION) over a byte stream: strips Telnet commands from what the host
/// sends, applies SET-BAUDRATE and SET-CONTROL (DTR/RTS) and answers them, and escapes 0xFF in what the device sends.
/// See https://www.rfc-editor.org/rfc/rfc2217
/// </summary>
public sealed class Rfc2217Stream(Stream inner) : Stream, ISerialLineEvents, IHostBaudRate
{
    private const byte Iac = 255, Will = 251, Wont = 252, Do = 253, Dont = 254, Sb = 250, Se = 240, ComPort = 44;
    private readonly byte[] raw = new byte[65536];
    private readonly List<byte> subnegotiation = [];
    private readonly HashSet<(byte, byte)> answered = [];
    private int state;
    private byte verb;
    private bool dtr;
    private bool rts;

    public event Action<bool, bool>? ControlLinesChanged;

    /// <summary>The baud rate the host asked for last (0 = never).</summary>
    public int HostBaudRate { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var n = await inner.ReadAsync(raw.AsMemory(0, Math.Min(raw.Length, buffer.Length)), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return 0;
            }

            var produced = 0;
            var replies = new List<byte>();
            for (var i = 0; i < n; i++)
            {
                var b = raw[i];
                switch (state)
                {
                    case 0:
                        if (b == Iac)
                        {
                            state = 1;
                        }
                        else
                        {
                            buffer.Span[produced++] = b;
                        }

                        break;
                    case 1:
                        if (b == Iac)
                        {
                            buffer.Span[produced++] = Iac;
                            state = 0;
                        }
                        else if (b is Will or Wont or Do or Dont)
                        {
                            verb = b;
                            state = 2;
                        }
                        else if (b == Sb)
                        {
                            subnegotiation.Clear();
                            state = 3;
                        }
                        else
                        {
                            state = 0;
                        }

                        break;
                    case 2:
                        Negotiate(verb, b, replies);
                        state = 0;
                        break;
                    case 3:
                        if (b == Iac)
                        {
                            state = 4;
                        }
                        else
                        {
                            subnegotiation.Add(b);
                        }

                        break;
                    default:
                        if (b == Se)
                        {
                            Subnegotiation(replies);
                            state = 0;
                        }
                        else
                        {
                            subnegotiation.Add(b); // IAC IAC inside SB = 0xFF
                            state = 3;
                        }

                        break;
                }
            }

            if (replies.Count > 0)
            {
                await inner.WriteAsync(replies.ToArray(), cancellationToken).ConfigureAwait(false);
            }

            if (produced > 0)
            {
                return produced;
            }
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var escaped = new List<byte>(buffer.Length + 8);
        foreach (var b in buffer.Span)
        {
            escaped.Add(b);
            if (b == Iac)
            {
                escaped.Add(Iac);
            }
        }

        await inner.WriteAsync(escaped.ToArray(), cancellationToken).ConfigureAwait(false);
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Negotiate(byte request, byte option, List<byte> replies)
    {
        var supported = option is 0 or 3 or ComPort;
        if (!answered.Add((request, option)))
        {
            return;
        }

        if (request == Do)
        {
            replies.AddRange([Iac, supported ? Will : Wont, option]);
        }
        else if (request == Will)
        {
            replies.AddRange([Iac, supported ? Do : Dont, option]);
        }
    }

    private void Subnegotiation(List<byte> replies)
    {
        if (subnegotiation.Count < 2 || subnegotiation[0] != ComPort)
        {
            return;
        }

        var command = subnegotiation[1];
        var value = subnegotiation.Skip(2).ToArray();
        if (command == 1 && value.Length == 4)
        {
            HostBaudRate = BinaryPrimitives.ReadInt32BigEndian(value);
        }
        else if (command == 5 && value.Length == 1)
        {
            switch (value[0])
            {
                case 8: dtr = true; break;
                case 9: dtr = false; break;
                case 11: rts = true; break;
                case 12: rts = false; break;
                default: break;
            }

            if (value[0] is 8 or 9 or 11 or 12)
            {
                ControlLinesChanged?.Invoke(dtr, rts);
            }
        }

        // Acknowledge with the server-to-client code (client code + 100).
        replies.AddRange([Iac, Sb, ComPort, (byte)(command + 100)]);
        foreach (var b in value)
        {
            replies.Add(b);
            if (b == Iac)
            {
                replies.Add(Iac);
            }
        }

        replies.AddRange([Iac, Se]);
    }
}
