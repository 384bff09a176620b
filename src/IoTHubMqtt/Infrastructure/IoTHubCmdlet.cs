using System.Collections.Concurrent;
using System.Management.Automation;
using IoTHubMqtt.Core.Diagnostics;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Infrastructure;

/// <summary>
/// Base of every cmdlet in the module. Bridges the async core to the synchronous pipeline:
/// <see cref="Run{T}"/> starts a core operation with a token that <see cref="StopProcessing"/> cancels (Ctrl+C),
/// and while it runs, pumps work that background threads <see cref="Post"/>ed (verbose lines, progress,
/// output objects) on the pipeline thread, the only thread allowed to call Write*.
/// </summary>
public abstract class IoTHubCmdlet : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentQueue<Action?> pipelineWork = new();

    // Waiting for posted work does not spin (spinCount 0): a cmdlet may wait like this for as long as a stream runs.
    private readonly ManualResetEventSlim workPosted = new(false, spinCount: 0);
    private IIoTHubLogger? coreLogger;
    private bool disposed;

    static IoTHubCmdlet() => ModuleInitializer.Register();

    /// <summary>Cancelled when the user presses Ctrl+C or the pipeline is stopped.</summary>
    protected CancellationToken StopToken => stop.Token;

    protected override void StopProcessing()
    {
        stop.Cancel();
        Post(null); // wake the pump
    }

    /// <summary>Queues work for the pipeline thread; safe from any thread. Runs during the next <see cref="Run{T}"/> pump or <see cref="DrainPosted"/>.</summary>
    protected void Post(Action? action)
    {
        try
        {
            pipelineWork.Enqueue(action);
            workPosted.Set();
        }
        catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException)
        {
            // The cmdlet has ended; a late log line from a background thread has nowhere to go.
        }
    }

    /// <summary>Whether verbose output is on for this call (-Verbose or $VerbosePreference), to skip building lines no one reads.</summary>
    protected bool IsVerbose =>
        (MyInvocation.BoundParameters.TryGetValue("Verbose", out var flag) && flag is SwitchParameter { IsPresent: true }) ||
        (!MyInvocation.BoundParameters.ContainsKey("Verbose") && GetVariableValue("VerbosePreference") is ActionPreference preference && preference != ActionPreference.SilentlyContinue);

    /// <summary>Whether debug output is on for this call (-Debug or $DebugPreference).</summary>
    protected bool IsDebug =>
        (MyInvocation.BoundParameters.TryGetValue("Debug", out var flag) && flag is SwitchParameter { IsPresent: true }) ||
        (!MyInvocation.BoundParameters.ContainsKey("Debug") && GetVariableValue("DebugPreference") is ActionPreference preference && preference != ActionPreference.SilentlyContinue);

    /// <summary>
    /// The core's levelled logger for this call (Info and above as verbose records, Verbose as debug records), safe to
    /// call from any thread. First read it on the pipeline thread (BeginProcessing): that is when -Verbose and -Debug
    /// are looked up.
    /// </summary>
    private protected IIoTHubLogger CoreLogger => coreLogger ??= new CmdletLogger(IsVerbose, IsDebug, Post, WriteVerbose, WriteDebug);

    /// <summary>A verbose sink for the core that is safe to call from any thread.</summary>
    protected Action<string> VerboseSink => message => Post(() => WriteVerbose(message));

    /// <summary>Runs an async core operation to completion on the pipeline thread, pumping posted work meanwhile.</summary>
    protected T Run<T>(Func<CancellationToken, Task<T>> operation)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        stop.Token.ThrowIfCancellationRequested();
        Task<T> task;
        try
        {
            task = operation(stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }

        if (!task.IsCompleted)
        {
            // Wake the pump when the operation ends; an operation that finished synchronously needs no wake-up.
            task.ContinueWith(_ => Post(null), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        while (!task.IsCompleted)
        {
            var work = TakePosted();
            work?.Invoke();
            if (stop.IsCancellationRequested && !task.IsCompleted)
            {
                // The core observes the token; do not wait for a slow one: Ctrl+C ends the cmdlet at once.
                _ = task.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
                throw new PipelineStoppedException();
            }
        }

        DrainPosted();
        try
        {
            return task.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex) && ex is not RuntimeException)
        {
            // Keeps the core's ErrorId when the caller lets it escape ProcessRecord.
            throw new IoTHubCmdletException(ErrorMapper.ToErrorRecord(ex, null));
        }
    }

    /// <summary>Runs an async core operation that has no result.</summary>
    protected void Run(Func<CancellationToken, Task> operation) =>
        Run(async token =>
        {
            await operation(token).ConfigureAwait(false);
            return true;
        });

    /// <summary>The next posted work item, blocking (without spinning) until there is one.</summary>
    private Action? TakePosted()
    {
        while (true)
        {
            if (pipelineWork.TryDequeue(out var work))
            {
                return work;
            }

            workPosted.Reset();
            if (pipelineWork.TryDequeue(out work))
            {
                return work;
            }

            workPosted.Wait();
        }
    }

    /// <summary>Runs an async core operation like <see cref="Run{T}"/>, a progress record saying what runs until it ends.</summary>
    protected T RunWithProgress<T>(int activityId, string activity, string status, Func<CancellationToken, Task<T>> operation)
    {
        var progress = new ProgressRecord(activityId, activity, status);
        WriteProgress(progress);
        var result = Run(operation);
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
        return result;
    }

    /// <summary>Runs what background threads posted so far.</summary>
    protected void DrainPosted()
    {
        while (pipelineWork.TryDequeue(out var work))
        {
            work?.Invoke();
        }
    }

    /// <summary>
    /// Writes the results of a parallel batch that are ready, in input order (errors per item), with progress when
    /// <paramref name="progress"/> names its record id, activity and the noun counted.
    /// </summary>
    private protected void WriteReady<T>(OrderedBatch<T> batch, (int Id, string Activity, string Noun)? progress = null)
        where T : class
    {
        DrainPosted();
        foreach (var item in batch.TakeReady())
        {
            if (item.Outcome.Result.Error is { } error)
            {
                WriteError(error is OperationCanceledException && StopToken.IsCancellationRequested ? throw new PipelineStoppedException() : error, item.Target);
            }
            else
            {
                WriteObject(item.Outcome.Result.Value);
            }

            if (progress is { } p && (batch.Completed % 10 == 0 || batch.PeekNext() is null))
            {
                WriteProgress(new ProgressRecord(p.Id, p.Activity, $"{batch.Completed} of {batch.Added} {p.Noun} ({batch.Rate:0.#}/s)")
                {
                    PercentComplete = (int)(100L * batch.Completed / Math.Max(1, batch.Added)),
                    CurrentOperation = item.Target.ToString(),
                });
            }
        }
    }

    /// <summary>Waits for the rest of a parallel batch, writing its results in order, then completes its progress.</summary>
    private protected void FinishBatch<T>(OrderedBatch<T> batch, (int Id, string Activity, string Noun)? progress = null)
        where T : class
    {
        while (batch.PeekNext() is { } next)
        {
            if (progress is { } waiting && !next.Outcome.IsCompleted)
            {
                // The pipeline has ended: say what is still being waited for (a method call can take its whole timeout).
                WriteProgress(new ProgressRecord(waiting.Id, waiting.Activity, $"{batch.Completed} of {batch.Added} {waiting.Noun}")
                {
                    PercentComplete = (int)(100L * batch.Completed / Math.Max(1, batch.Added)),
                    CurrentOperation = $"waiting for {next.Target}",
                });
            }

            Run(ct => next.Outcome.WaitAsync(ct));
            WriteReady(batch, progress);
        }

        if (progress is { } p)
        {
            WriteProgress(new ProgressRecord(p.Id, p.Activity, "Done") { RecordType = ProgressRecordType.Completed });
        }
    }

    /// <summary>Writes a non-terminating error for one item of a pipeline and goes on.</summary>
    protected void WriteError(Exception exception, object? target = null) => WriteError(ErrorMapper.ToErrorRecord(exception, target));

    /// <summary>Stops the cmdlet with an error: the whole call cannot go on.</summary>
    protected void ThrowTerminatingError(Exception exception, object? target = null)
    {
        if (exception is PipelineStoppedException stopped)
        {
            throw stopped;
        }

        ThrowTerminatingError(ErrorMapper.ToErrorRecord(exception, target));
    }

    /// <summary>Runs one input's work: a failure is a non-terminating error about <paramref name="target"/>, and the pipeline goes on.</summary>
    protected void NonTerminating(Action action, object? target = null)
    {
        try
        {
            action();
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            WriteError(ex, target);
        }
    }

    /// <summary>Runs <paramref name="function"/>, turning core exceptions into a terminating ErrorRecord.</summary>
    protected T Terminating<T>(Func<T> function, object? target = null)
    {
        try
        {
            return function();
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            ThrowTerminatingError(ex, target);
            throw; // not reached: ThrowTerminatingError throws
        }
    }

    /// <summary>Runs <paramref name="action"/>, turning core exceptions into a terminating ErrorRecord.</summary>
    protected void Terminating(Action action, object? target = null)
    {
        try
        {
            action();
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            ThrowTerminatingError(ex, target);
        }
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        if (disposing)
        {
            stop.Dispose();
            workPosted.Dispose();
        }
    }

    /// <summary>A throw helper for argument checks the binder cannot express, with a stable ErrorId.</summary>
    protected static IoTHubMqttException InvalidArgument(string errorId, string message, string? recommendedAction = null, object? target = null) =>
        new(errorId, message, recommendedAction, target);
}
