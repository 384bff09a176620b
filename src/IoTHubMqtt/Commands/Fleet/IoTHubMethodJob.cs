using System.Management.Automation;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// The job Invoke-IoTHubMethod -AsJob returns: the method calls run on a background task while the script goes on
/// (for example to answer the call itself with Wait-IoTHubMethodCall); Receive-Job -Wait collects the results.
/// </summary>
public sealed class IoTHubMethodJob : Job
{
    private readonly CancellationTokenSource cancel = new();
    private readonly string location;
    private int finished;

    internal IoTHubMethodJob(string command, string location)
        : base(command)
    {
        this.location = location;
        PSJobTypeName = "IoTHubMethodJob";
    }

    public override string StatusMessage => JobStateInfo.State.ToString();

    public override bool HasMoreData => Output.Count > 0 || Error.Count > 0;

    public override string Location => location;

    /// <summary>Runs <paramref name="work"/> on a background task; it reports each device's outcome as it comes.</summary>
    internal void Start(Func<Action<object, IoTHubMethodResult?, Exception?>, CancellationToken, Task> work)
    {
        SetJobState(JobState.Running);
        var failed = 0;
        void Report(object target, IoTHubMethodResult? result, Exception? error)
        {
            if (error is null)
            {
                Output.Add(PSObject.AsPSObject(result));
            }
            else
            {
                Interlocked.Exchange(ref failed, 1);
                Error.Add(ErrorMapper.ToErrorRecord(error, target));
            }
        }

        _ = Task.Run(async () =>
        {
            try
            {
                await work(Report, cancel.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                Finish(JobState.Stopped);
                return;
            }
            catch (Exception ex) when (ErrorMapper.IsMappable(ex))
            {
                Report(location, null, ex);
            }

            Finish(Volatile.Read(ref failed) == 1 ? JobState.Failed : JobState.Completed);
        });
    }

    public override void StopJob()
    {
        cancel.Cancel();
        Finish(JobState.Stopped);
    }

    /// <summary>Sets the final state once, whichever of the work and StopJob gets there first.</summary>
    private void Finish(JobState state)
    {
        if (Interlocked.Exchange(ref finished, 1) == 0)
        {
            SetJobState(state);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            cancel.Dispose();
        }

        base.Dispose(disposing);
    }
}
