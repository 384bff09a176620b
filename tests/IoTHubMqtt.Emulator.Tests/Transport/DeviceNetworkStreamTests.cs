using System.Net;
using System.Net.Sockets;
using IoTHubMqtt.Emulator.Transport;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests.Transport;

/// <summary>
/// The TCP stream under a device connection sends through operations every connection shares: what it sends arrives whole
/// and in order on each connection, and its errors are those of <see cref="NetworkStream"/>, on real loopback sockets.
/// </summary>
public sealed class DeviceNetworkStreamTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task Sends_OnManyConnectionsAtOnce_ArriveWholeAndInOrder()
    {
        var token = TestContext.Current.CancellationToken;
        var pairs = new List<(DeviceNetworkStream Server, Socket Client)>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                var (server, client) = await ConnectedPairAsync(token);
                pairs.Add((new DeviceNetworkStream(server), client));
            }

            // Larger than the socket buffers, so sends wait for the peer and many are under way at once.
            await Task.WhenAll(pairs.Select(async (pair, index) =>
            {
                var expected = new byte[4 << 20];
                new Random(index).NextBytes(expected);
                var received = new byte[expected.Length];
                var read = ReadAllAsync(pair.Client, received, token);
                for (var offset = 0; offset < expected.Length; offset += 64 * 1024)
                {
                    await pair.Server.WriteAsync(expected.AsMemory(offset, 64 * 1024), token);
                }

                await read.WaitAsync(HangGuard, token);
                Assert.Equal(expected, received);
            }));
        }
        finally
        {
            foreach (var (server, client) in pairs)
            {
                await server.DisposeAsync();
                client.Dispose();
            }
        }
    }

    [Fact]
    public async Task Send_ToAClosedConnection_FailsAsNetworkStreamDoes()
    {
        var token = TestContext.Current.CancellationToken;
        var (server, client) = await ConnectedPairAsync(token);
        await using var stream = new DeviceNetworkStream(server);
        client.LingerState = new LingerOption(true, 0); // closed with a reset
        client.Dispose();

        var error = await Assert.ThrowsAsync<IOException>(async () =>
        {
            for (var i = 0; i < 100; i++)
            {
                await stream.WriteAsync(new byte[64 * 1024], token);
                await Task.Yield();
            }
        }).WaitAsync(HangGuard, token);
        Assert.IsType<SocketException>(error.InnerException);
    }

    [Fact]
    public async Task Send_Cancelled_WhileThePeerReadsNothing_EndsAsCancelled()
    {
        var token = TestContext.Current.CancellationToken;
        var (server, client) = await ConnectedPairAsync(token);
        using var peer = client;
        await using var stream = new DeviceNetworkStream(server);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(token);

        var sending = stream.WriteAsync(new byte[64 << 20], cancel.Token).AsTask(); // far beyond what the socket buffers hold
        Assert.False(sending.IsCompleted);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sending.WaitAsync(HangGuard, token));
    }

    [Fact]
    public async Task Send_AfterDispose_IsRefused()
    {
        var token = TestContext.Current.CancellationToken;
        var (server, client) = await ConnectedPairAsync(token);
        using var peer = client;
        var stream = new DeviceNetworkStream(server);
        await stream.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await stream.WriteAsync(new byte[1], token));
    }

    /// <summary>
    /// The hub closes a connection while the device is still sending (throttled, or a bad packet in a burst): what the hub
    /// sent before (the acknowledgements of what it took) reaches the device, and then the end of the stream, not a reset
    /// (closing a socket with its input unread resets the connection, and a device that learns of the reset first may never
    /// read what was already on its way). The hub's side stays open until the device closes its own.
    /// </summary>
    [Fact]
    public async Task Dispose_WithTheDevicesInputUnread_EndsTheStreamAfterWhatWasSent_WithoutAReset()
    {
        var token = TestContext.Current.CancellationToken;
        var (server, client) = await ConnectedPairAsync(token);
        using var device = client;
        var stream = new DeviceNetworkStream(server);
        await device.SendAsync(new byte[4096], token); // the device's next packets, which the hub will not read
        await Eventually.TrueAsync(() => server.Available == 4096);
        var acknowledgements = Enumerable.Range(0, 64).Select(i => (byte)i).ToArray();
        await stream.WriteAsync(acknowledgements, token);

        await stream.DisposeAsync();
        await device.SendAsync(new byte[4096], token); // still sending: the hub's side reads and drops it

        var received = new byte[acknowledgements.Length];
        await ReadAllAsync(device, received, token).WaitAsync(HangGuard, token);
        Assert.Equal(acknowledgements, received);
        Assert.Equal(0, await device.ReceiveAsync(new byte[1], token).AsTask().WaitAsync(HangGuard, token)); // the end, not a reset

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await stream.WriteAsync(new byte[1], token));

        device.Shutdown(SocketShutdown.Send); // the device closes its side; the hub's then closes
        Assert.Equal(0, await device.ReceiveAsync(new byte[1], token).AsTask().WaitAsync(HangGuard, token));
    }

    [Fact]
    public async Task Dispose_WithNothingUnread_ClosesAtOnce()
    {
        var token = TestContext.Current.CancellationToken;
        var (server, client) = await ConnectedPairAsync(token);
        using var device = client;
        var stream = new DeviceNetworkStream(server);
        await stream.WriteAsync(new byte[] { 1, 2, 3 }, token);

        await stream.DisposeAsync();

        Assert.Throws<ObjectDisposedException>(() => server.Available); // closed, not lingering
        var received = new byte[3];
        await ReadAllAsync(device, received, token).WaitAsync(HangGuard, token);
        Assert.Equal(0, await device.ReceiveAsync(new byte[1], token).AsTask().WaitAsync(HangGuard, token));
    }

    private static async Task ReadAllAsync(Socket socket, byte[] buffer, CancellationToken token)
    {
        var offset = 0;
        while (offset < buffer.Length)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(offset), token);
            Assert.NotEqual(0, read);
            offset += read;
        }
    }

    private static async Task<(Socket Server, Socket Client)> ConnectedPairAsync(CancellationToken token)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accepting = listener.AcceptAsync(token).AsTask();
        await client.ConnectAsync(listener.LocalEndPoint!, token);
        return (await accepting.WaitAsync(HangGuard, token), client);
    }
}
