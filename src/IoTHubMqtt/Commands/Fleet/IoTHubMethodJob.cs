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

    internal IoTHubMethodJob(string command, string location)
        : base(command)
    {
        this.location = location;
        PSJobTypeName = "IoTHubMethodJob";
    }

    public override string StatusMessage => JobStateInfo.State.ToString();

    public override bool HasMoreData => Output.Count > 0 || Error.Count > 0;

    public override string Location => location;

    internal void Start(Func<CancellationToken, Task<IReadOnlyList<(object Target, IoTHubMethodResult? Result, Exception? Error)>>> work)
    {
        SetJobState(JobState.Running);
        _ = Task.Run(async () =>
        {
            var failed = false;
            try
            {
                foreach (var (target, result, error) in await work(cancel.Token).ConfigureAwait(false))
                {
                    if (error is null)
                    {
                        Output.Add(PSObject.AsPSObject(result));
                    }
                    else
                    {
                        failed = true;
                        Error.Add(ErrorMapper.ToErrorRecord(error, target));
                    }
                }
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                SetJobState(JobState.Stopped);
                return;
            }
            catch (Exception ex) when (ErrorMapper.IsMappable(ex))
            {
                failed = true;
                Error.Add(ErrorMapper.ToErrorRecord(ex, location));
            }

            SetJobState(failed ? JobState.Failed : JobState.Completed);
        });
    }

    public override void StopJob()
    {
        cancel.Cancel();
        if (!IsFinished(JobStateInfo.State))
        {
            SetJobState(JobState.Stopped);
        }
    }

    private static bool IsFinished(JobState state) => state is JobState.Completed or JobState.Failed or JobState.Stopped;

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            cancel.Dispose();
        }

        base.Dispose(disposing);
    }
}
