namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// Messages sent and not yet reported, in the order they were sent, for a caller that reports each message once the hub
/// has acknowledged it and in that order. Each entry carries the caller's <typeparamref name="TState"/> and its message's
/// pooled body buffer, which goes back to <see cref="PayloadBuffers"/> when the entry is taken. One pipeline uses it: not
/// safe from several threads.
/// </summary>
public sealed class TelemetryAcknowledgements<TState>
{
    private readonly Queue<Entry> pending = new();

    /// <summary>A sent message: its acknowledgement, the message, the caller's state and the body's pooled buffer (or null).</summary>
    public readonly record struct Entry(Task<TelemetrySendResult> Acknowledged, TelemetryMessage Message, TState State, byte[]? Buffer)
    {
        /// <summary>One line on an acknowledged message: its size, its id and how many attempts it took.</summary>
        public string Describe() =>
            $"Sent {Message.Payload.Length} bytes{(Message.MessageId is null ? "" : $" ({Message.MessageId})")}; acknowledged after {Acknowledged.Result.Attempts} attempt(s).";
    }

    /// <summary>Messages sent and not taken yet.</summary>
    public int Count => pending.Count;

    /// <summary>Messages taken that the hub acknowledged.</summary>
    public long Acknowledged { get; private set; }

    public void Add(Task<TelemetrySendResult> acknowledged, TelemetryMessage message, TState state, byte[]? buffer) =>
        pending.Enqueue(new Entry(acknowledged, message, state, buffer));

    /// <summary>
    /// Takes the oldest entry once its acknowledgement has completed, or whatever its state when <paramref name="all"/>
    /// (after <see cref="WhenAllAsync"/>); false when there is none to take.
    /// </summary>
    public bool TryTake(bool all, out Entry entry)
    {
        if (pending.Count > 0 && (all || pending.Peek().Acknowledged.IsCompleted))
        {
            entry = pending.Dequeue();
            PayloadBuffers.Return(entry.Buffer);
            if (entry.Acknowledged.IsCompletedSuccessfully)
            {
                Acknowledged++;
            }

            return true;
        }

        entry = default;
        return false;
    }

    /// <summary>Waits until every acknowledgement has completed; failures are the entries' own, reported when taken.</summary>
    public async Task WhenAllAsync(CancellationToken cancellationToken)
    {
        if (pending.Count == 0)
        {
            return;
        }

        try
        {
            await Task.WhenAll(pending.Select(p => (Task)p.Acknowledged)).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Leaves the entries to the client (the caller stopped or failed): they go on being sent, and a failure of one of
    /// them, with no one left to report it to, is observed here. Their buffers are not reused, since the sender may still
    /// read them.
    /// </summary>
    public void Abandon()
    {
        foreach (var entry in pending)
        {
            _ = entry.Acknowledged.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        pending.Clear();
    }
}
