using System.Threading.Channels;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// Items the hub pushed (C2D messages, method calls, desired-property patches), waiting for the application to take
/// them. Receiving waits on the client's clock; closing lets receivers take what is left, then answers null.
/// </summary>
internal sealed class Inbox<T>(TimeProvider time)
    where T : class
{
    private readonly Channel<T> items = Channel.CreateUnbounded<T>(new UnboundedChannelOptions { SingleWriter = false });

    public bool Post(T item) => items.Writer.TryWrite(item);

    public void Close() => items.Writer.TryComplete();

    /// <summary>The next item; null when none arrives within <paramref name="timeout"/> (null or infinite: no limit) or the inbox is closed.</summary>
    public async Task<T?> ReceiveAsync(TimeSpan? timeout, CancellationToken cancellationToken)
    {
        if (items.Reader.TryRead(out var ready))
        {
            return ready;
        }

        using var limit = timeout is { } t && t != Timeout.InfiniteTimeSpan ? new CancellationTokenSource(t < TimeSpan.Zero ? TimeSpan.Zero : t, time) : null;
        using var linked = limit is null ? null : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, limit.Token);
        try
        {
            return await items.Reader.ReadAsync(linked?.Token ?? cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        catch (ChannelClosedException)
        {
            return items.Reader.TryRead(out var item) ? item : null;
        }
    }
}
