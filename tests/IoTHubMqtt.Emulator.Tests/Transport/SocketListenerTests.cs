using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using IoTHubMqtt.Emulator.Transport;

namespace IoTHubMqtt.Emulator.Tests.Transport;

/// <summary>The TCP accept loop every listener shares, on real loopback sockets.</summary>
public sealed class SocketListenerTests
{
    /// <summary>Stopped the moment it started, the accept loop ends cleanly, whether or not it had begun waiting.</summary>
    [Fact]
    public async Task StoppedRightAfterStart_StopsCleanly()
    {
        for (var i = 0; i < 3000; i++)
        {
            using var listener = new SocketListener("test", IPAddress.Loopback, 0, 8, (_, _) => Task.CompletedTask, new EmulatorLog(null));
            listener.Start();
            await listener.StopAsync();
        }
    }

    [Fact]
    public void DisposedRightAfterStart_LeavesNoFaultedTaskBehind()
    {
        var unobserved = new ConcurrentQueue<Exception>();
        void OnUnobserved(object? sender, UnobservedTaskExceptionEventArgs e)
        {
            unobserved.Enqueue(e.Exception);
            e.SetObserved();
        }

        TaskScheduler.UnobservedTaskException += OnUnobserved;
        try
        {
            // The loop's first step runs on the thread pool, usually after Dispose has already run here.
            for (var i = 0; i < 200; i++)
            {
                var listener = new SocketListener("test", IPAddress.Loopback, 0, 8, (_, _) => Task.CompletedTask, new EmulatorLog(null));
                listener.Start();
                listener.Dispose();
            }

            // Let every loop take its first step, then collect the tasks nobody awaits.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (ThreadPool.PendingWorkItemCount > 0 && DateTime.UtcNow < deadline)
            {
                Thread.Yield();
            }

            for (var i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= OnUnobserved;
        }

        Assert.Empty(unobserved);
    }

    [Fact]
    public async Task AcceptsConnections_WithNoDelay_AndStopsCleanly()
    {
        var ct = TestContext.Current.CancellationToken;
        var accepted = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listener = new SocketListener("test", IPAddress.Loopback, 0, 8, (socket, _) =>
        {
            accepted.TrySetResult(socket.NoDelay);
            socket.Dispose();
            return Task.CompletedTask;
        }, new EmulatorLog(null));
        listener.Start();

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, listener.Port, ct);
        Assert.True(await accepted.Task.WaitAsync(TimeSpan.FromMinutes(1), ct));

        await listener.StopAsync();
        using var late = new TcpClient();
        await Assert.ThrowsAnyAsync<SocketException>(() => late.ConnectAsync(IPAddress.Loopback, listener.Port, ct).AsTask());
    }
}
