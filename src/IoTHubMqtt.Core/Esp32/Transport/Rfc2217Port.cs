using System.Buffers.Binary;
using System.Net.Sockets;

namespace IoTHubMqtt.Core.Esp32.Transport;

/// <summary>
/// <c>rfc2217://host:port</c>: a remote serial port over Telnet with the COM-PORT-OPTION (RFC 2217), which carries
/// the baud rate and the DTR/RTS lines, so the classic reset works across the network (ser2net, esp_rfc2217_server).
/// </summary>
public sealed class Rfc2217Port : PumpedPort
{
    private const byte Iac = 255, Will = 251, Wont = 252, Do = 253, Dont = 254, Sb = 250, Se = 240;
    private const byte ComPortOption = 44, Binary = 0, SuppressGoAhead = 3;
    private const byte SetBaudRate = 1, SetControl = 5;

    private readonly TcpClient client;
    private readonly NetworkStream stream;
    private readonly SemaphoreSlim writeLock = new(1, 1);
    private readonly List<byte> negotiationReplies = [];
    private int baud;
    private int state; // 0 data, 1 after IAC, 2 after WILL/WONT/DO/DONT, 3 in SB, 4 IAC in SB
    private byte verb;

    private Rfc2217Port(string name, TcpClient client, int baudRate)
        : base(name)
    {
        this.client = client;
        client.NoDelay = true;
        stream = client.GetStream();
        baud = baudRate;
        StartPump();
    }

    public override bool HasControlLines => true;

    public override int BaudRate => baud;

    public static async Task<Rfc2217Port> ConnectAsync(string name, string host, int port, int baudRate = 115200, CancellationToken cancellationToken = default)
    {
        var client = new TcpClient();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await client.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            client.Dispose();
            throw Esp32Errors.PortNotFound(name, ex);
        }

        var result = new Rfc2217Port(name, client, baudRate);
        await result.RawWriteAsync(
            [Iac, Will, ComPortOption, Iac, Will, Binary, Iac, Do, Binary, Iac, Will, SuppressGoAhead, Iac, Do, SuppressGoAhead],
            cancellationToken).ConfigureAwait(false);
        await result.SetBaudRateAsync(baudRate, cancellationToken).ConfigureAwait(false);
        return result;
    }

    protected override ValueTask<int> ReadCoreAsync(Memory<byte> buffer, CancellationToken cancellationToken) => stream.ReadAsync(buffer, cancellationToken);

    protected override ReadOnlyMemory<byte> Filter(ReadOnlyMemory<byte> raw)
    {
        var output = new List<byte>(raw.Length);
        foreach (var b in raw.Span)
        {
            switch (state)
            {
                case 0:
                    if (b == Iac)
                    {
                        state = 1;
                    }
                    else
                    {
                        output.Add(b);
                    }

                    break;
                case 1:
                    if (b == Iac)
                    {
                        output.Add(Iac);
                        state = 0;
                    }
                    else if (b is Will or Wont or Do or Dont)
                    {
                        verb = b;
                        state = 2;
                    }
                    else
                    {
                        state = b == Sb ? 3 : 0;
                    }

                    break;
                case 2:
                    // Agree to binary, suppress-go-ahead and the COM port option; refuse everything else.
                    var known = b is Binary or SuppressGoAhead or ComPortOption;
                    if (verb == Do)
                    {
                        lock (negotiationReplies)
                        {
                            negotiationReplies.AddRange([Iac, known ? Will : Wont, b]);
                        }
                    }

                    state = 0;
                    break;
                case 3:
                    state = b == Iac ? 4 : 3;
                    break;
                default:
                    state = b == Se ? 0 : 3;
                    break;
            }
        }

        byte[] replies;
        lock (negotiationReplies)
        {
            replies = [.. negotiationReplies];
            negotiationReplies.Clear();
        }

        if (replies.Length > 0)
        {
            _ = RawWriteAsync(replies, CancellationToken.None).AsTask().ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }

        return output.ToArray();
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        var escaped = new List<byte>(data.Length + 8);
        foreach (var b in data.Span)
        {
            escaped.Add(b);
            if (b == Iac)
            {
                escaped.Add(Iac);
            }
        }

        await RawWriteAsync(escaped.ToArray(), cancellationToken).ConfigureAwait(false);
    }

    public override async ValueTask SetControlLinesAsync(bool? dtr, bool? rts, CancellationToken cancellationToken = default)
    {
        if (dtr is { } d)
        {
            await RawWriteAsync([Iac, Sb, ComPortOption, SetControl, d ? (byte)8 : (byte)9, Iac, Se], cancellationToken).ConfigureAwait(false);
        }

        if (rts is { } r)
        {
            await RawWriteAsync([Iac, Sb, ComPortOption, SetControl, r ? (byte)11 : (byte)12, Iac, Se], cancellationToken).ConfigureAwait(false);
        }
    }

    public override async ValueTask SetBaudRateAsync(int baudRate, CancellationToken cancellationToken = default)
    {
        var value = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(value, baudRate);
        var message = new List<byte> { Iac, Sb, ComPortOption, SetBaudRate };
        foreach (var b in value)
        {
            message.Add(b);
            if (b == Iac)
            {
                message.Add(Iac);
            }
        }

        message.AddRange([Iac, Se]);
        await RawWriteAsync(message.ToArray(), cancellationToken).ConfigureAwait(false);
        baud = baudRate;
    }

    protected override ValueTask CloseCoreAsync()
    {
        client.Dispose();
        return ValueTask.CompletedTask;
    }

    private async ValueTask RawWriteAsync(byte[] data, CancellationToken cancellationToken)
    {
        await writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await stream.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            writeLock.Release();
        }
    }
}
