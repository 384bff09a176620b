using System.Net.Sockets;

namespace IoTHubMqtt.Core.Esp32.Transport;

/// <summary><c>socket://host:port</c>: a raw TCP byte stream (a serial-to-network bridge or the simulator); no control lines.</summary>
public sealed class TcpPort : PumpedPort
{
    private readonly TcpClient client;
    private readonly NetworkStream stream;
    private int baud = 115200;

    private TcpPort(string name, TcpClient client)
        : base(name)
    {
        this.client = client;
        client.NoDelay = true;
        stream = client.GetStream();
        StartPump();
    }

    public override bool HasControlLines => false;

    public override int BaudRate => baud;

    public override bool HasBaudRate => false;

    public static async Task<TcpPort> ConnectAsync(string name, string host, int port, CancellationToken cancellationToken = default)
    {
        var client = new TcpClient();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await client.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
            return new TcpPort(name, client);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            client.Dispose();
            throw Esp32Errors.PortNotFound(name, ex);
        }
    }

    protected override ValueTask<int> ReadCoreAsync(Memory<byte> buffer, CancellationToken cancellationToken) => stream.ReadAsync(buffer, cancellationToken);

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        await stream.WriteAsync(data, cancellationToken).ConfigureAwait(false);

    public override ValueTask SetControlLinesAsync(bool? dtr, bool? rts, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public override ValueTask SetBaudRateAsync(int baudRate, CancellationToken cancellationToken = default)
    {
        baud = baudRate;
        return ValueTask.CompletedTask;
    }

    protected override ValueTask CloseCoreAsync()
    {
        client.Dispose();
        return ValueTask.CompletedTask;
    }
}
