namespace IoTHubMqtt.Core.Esp32;

/// <summary>
/// SLIP framing (RFC 1055) as the ESP serial bootloader uses it: every frame starts and ends with 0xC0,
/// 0xC0 inside a frame is sent as DB DC and 0xDB as DB DD.
/// See https://docs.espressif.com/projects/esptool/en/latest/esp32/advanced-topics/serial-protocol.html
/// </summary>
public static class Slip
{
    public const byte End = 0xC0;
    public const byte Esc = 0xDB;
    public const byte EscEnd = 0xDC;
    public const byte EscEsc = 0xDD;

    /// <summary>Encodes one frame, with the 0xC0 delimiters at both ends.</summary>
    public static byte[] Encode(ReadOnlySpan<byte> payload)
    {
        var extra = 0;
        foreach (var b in payload)
        {
            if (b is End or Esc)
            {
                extra++;
            }
        }

        var frame = new byte[payload.Length + extra + 2];
        var i = 0;
        frame[i++] = End;
        foreach (var b in payload)
        {
            switch (b)
            {
                case End:
                    frame[i++] = Esc;
                    frame[i++] = EscEnd;
                    break;
                case Esc:
                    frame[i++] = Esc;
                    frame[i++] = EscEsc;
                    break;
                default:
                    frame[i++] = b;
                    break;
            }
        }

        frame[i] = End;
        return frame;
    }
}

/// <summary>
/// Incremental SLIP decoder: feed it bytes as they arrive; it yields whole frames. Bytes outside a frame
/// (boot log text) are ignored but kept in <see cref="Noise"/>; an invalid escape discards the frame
/// (counted in <see cref="InvalidFrames"/>); a frame longer than the limit is discarded too, so malformed
/// input can never grow memory without bound.
/// </summary>
public sealed class SlipDecoder
{
    private readonly List<byte> frame = [];
    private readonly int maxFrameLength;
    private bool inFrame;
    private bool escaped;
    private bool broken;

    public SlipDecoder(int maxFrameLength = 0x10000 + 64) => this.maxFrameLength = maxFrameLength;

    /// <summary>Frames dropped because of a bad escape or excessive length.</summary>
    public int InvalidFrames { get; private set; }

    /// <summary>Up to the last 4 KiB of bytes seen outside frames (boot messages), for error hints.</summary>
    public List<byte> Noise { get; } = [];

    /// <summary>Feeds bytes; calls <paramref name="onFrame"/> for each complete frame.</summary>
    public void Feed(ReadOnlySpan<byte> data, Action<byte[]> onFrame)
    {
        ArgumentNullException.ThrowIfNull(onFrame);
        foreach (var b in data)
        {
            if (!inFrame)
            {
                if (b == Slip.End)
                {
                    inFrame = true;
                    frame.Clear();
                    escaped = false;
                    broken = false;
                }
                else
                {
                    if (Noise.Count >= 4096)
                    {
                        Noise.RemoveRange(0, 1024);
                    }

                    Noise.Add(b);
                }

                continue;
            }

            if (b == Slip.End)
            {
                if (frame.Count == 0 && !broken && !escaped)
                {
                    // Back-to-back delimiters: the end of one frame is the start of the next.
                    continue;
                }

                if (broken || escaped)
                {
                    InvalidFrames++;
                }
                else
                {
                    onFrame(frame.ToArray());
                }

                inFrame = false;
                frame.Clear();
                escaped = false;
                broken = false;
                continue;
            }

            if (broken)
            {
                continue;
            }

            if (escaped)
            {
                escaped = false;
                if (b == Slip.EscEnd)
                {
                    Append(Slip.End);
                }
                else if (b == Slip.EscEsc)
                {
                    Append(Slip.Esc);
                }
                else
                {
                    broken = true;
                }
            }
            else if (b == Slip.Esc)
            {
                escaped = true;
            }
            else
            {
                Append(b);
            }
        }
    }

    /// <summary>Decodes every complete frame in <paramref name="data"/> (convenience for tests and tools).</summary>
    public static List<byte[]> DecodeAll(ReadOnlySpan<byte> data, int maxFrameLength = 0x10000 + 64)
    {
        var frames = new List<byte[]>();
        new SlipDecoder(maxFrameLength).Feed(data, frames.Add);
        return frames;
    }

    /// <summary>Forgets a partial frame (after a timeout or a baud change).</summary>
    public void Reset()
    {
        inFrame = false;
        escaped = false;
        broken = false;
        frame.Clear();
    }

    private void Append(byte b)
    {
        if (frame.Count >= maxFrameLength)
        {
            broken = true;
            frame.Clear();
            return;
        }

        frame.Add(b);
    }
}
