using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace IoTHubMqtt.Module.Tests.Harness;

/// <summary>
/// A real PowerShell 7.6 engine with the module imported from the build output, as users import it.
/// Each session is its own runspace; variables persist between <see cref="Invoke"/> calls.
/// </summary>
public sealed class PowerShellSession : IDisposable
{
    private readonly CapturingHost host = new();
    private readonly Runspace runspace;
    private readonly Lock stopping = new();
    private PowerShell? running;

    public PowerShellSession(bool importModule = true)
    {
        var state = InitialSessionState.CreateDefault2();
        if (importModule)
        {
            state.ImportPSModule(TestPaths.ModuleManifest);
        }

        runspace = RunspaceFactory.CreateRunspace(host, state);
        runspace.Open();
        using var style = PowerShell.Create();
        style.Runspace = runspace;
        style.AddScript("$PSStyle.OutputRendering = 'PlainText'").Invoke();
    }

    /// <summary>Runs script text; <paramref name="variables"/> are set first. Never throws for script errors: see the result.</summary>
    public PowerShellResult Invoke(string script, IDictionary<string, object?>? variables = null, TimeSpan? timeout = null)
    {
        using var shell = Create(script, variables);
        var output = new PSDataCollection<PSObject>();
        var async = shell.BeginInvoke<PSObject, PSObject>(null, output);
        lock (stopping)
        {
            running = shell;
        }

        try
        {
            return Finish(shell, async, output, script, timeout);
        }
        finally
        {
            lock (stopping)
            {
                running = null;
            }
        }
    }

    private PowerShellResult Finish(PowerShell shell, IAsyncResult async, PSDataCollection<PSObject> output, string script, TimeSpan? timeout)
    {
        RuntimeException? terminating = null;
        if (!async.AsyncWaitHandle.WaitOne(timeout ?? TimeSpan.FromMinutes(2)))
        {
            // What had happened by then, so that a hang names the command it hung in.
            // (A PSDataCollection's enumerator waits for the collection to complete: copy by index instead.)
            static List<T> Copy<T>(PSDataCollection<T> items) => Enumerable.Range(0, items.Count).Select(i => items[i]).ToList();
            var progress = Copy(shell.Streams.Progress).Select(p => $"{p.Activity}: {p.StatusDescription}").LastOrDefault();
            var seen = string.Join(" | ", Copy(output).Select(o => o?.ToString()));
            var errorRecords = Copy(shell.Streams.Error);
            var errors = string.Join(" | ", errorRecords.Select(e => $"{e.FullyQualifiedErrorId}: {e}"));
            var invocation = errorRecords.Select(e => e.InvocationInfo?.PositionMessage).LastOrDefault();
            shell.Stop();
            throw new TimeoutException(
                $"The script did not finish within {timeout ?? TimeSpan.FromMinutes(2)}.{Environment.NewLine}" +
                $"Output so far: {seen}{Environment.NewLine}Errors so far: {errors} {invocation}{Environment.NewLine}" +
                $"Last progress: {progress}{Environment.NewLine}Script: {script}");
        }

        try
        {
            shell.EndInvoke(async);
        }
        catch (RuntimeException ex)
        {
            terminating = ex;
        }

        return Collect(shell, output, terminating);
    }

    /// <summary>Presses Ctrl+C: stops what <see cref="Invoke"/> runs now on another thread (its result then shows what it did until then).</summary>
    public void Stop()
    {
        lock (stopping)
        {
            running?.BeginStop(null, null);
        }
    }

    /// <summary>
    /// Starts a script and presses Ctrl+C (Stop) once it has written <paramref name="outputsBeforeStop"/> objects: the
    /// sign that it got where the test stops it (<paramref name="meanwhile"/>, run once the script has started, can make
    /// those objects come). No time is waited out: the stop follows the output, however slow the machine. Stopped is
    /// true when the script ended stopped within a minute of Ctrl+C (a guard against a hang, far below the waits the
    /// tests stop).
    /// </summary>
    public (PowerShellResult Result, bool Stopped) InvokeAndStopAfterOutput(string script, int outputsBeforeStop, Action? meanwhile = null, IDictionary<string, object?>? variables = null)
    {
        using var shell = Create(script, variables);
        var output = new PSDataCollection<PSObject>();
        using var enough = new ManualResetEventSlim();
        output.DataAdded += (_, _) =>
        {
            if (output.Count >= outputsBeforeStop)
            {
                enough.Set();
            }
        };
        var async = shell.BeginInvoke<PSObject, PSObject>(null, output);
        meanwhile?.Invoke();
        var ready = WaitHandle.WaitAny([enough.WaitHandle, async.AsyncWaitHandle], TimeSpan.FromMinutes(2)) == 0;
        if (!ready)
        {
            shell.Stop();
            throw new InvalidOperationException($"The script ended or hung before writing {outputsBeforeStop} object(s) (it wrote {output.Count}, state {shell.InvocationStateInfo.State}): {script}");
        }

        shell.Stop();
        var finished = async.AsyncWaitHandle.WaitOne(TimeSpan.FromMinutes(1));
        var stopped = shell.InvocationStateInfo.State == PSInvocationState.Stopped;
        RuntimeException? terminating = null;
        try
        {
            if (finished)
            {
                shell.EndInvoke(async);
            }
        }
        catch (RuntimeException ex)
        {
            terminating = ex;
        }

        return (Collect(shell, output, terminating), stopped && finished);
    }

    /// <summary>Runs the script and renders its output with Out-Default, as a user sees it in the console.</summary>
    public string Render(string script, IDictionary<string, object?>? variables = null)
    {
        host.Clear();
        var result = Invoke($"& {{ {script} }} | Out-Default", variables);
        if (result.TerminatingError is not null)
        {
            throw result.TerminatingError;
        }

        return host.Text;
    }

    public object? GetVariable(string name) => runspace.SessionStateProxy.GetVariable(name);

    public void Dispose() => runspace.Dispose();

    private PowerShell Create(string script, IDictionary<string, object?>? variables)
    {
        if (variables is not null)
        {
            foreach (var (name, value) in variables)
            {
                runspace.SessionStateProxy.SetVariable(name, value);
            }
        }

        var shell = PowerShell.Create();
        shell.Runspace = runspace;
        shell.AddScript(script);
        return shell;
    }

    private static PowerShellResult Collect(PowerShell shell, PSDataCollection<PSObject> output, RuntimeException? terminating) => new()
    {
        Output = output.ToList(),
        Errors = shell.Streams.Error.ToList(),
        Warnings = shell.Streams.Warning.ToList(),
        Verbose = shell.Streams.Verbose.ToList(),
        Debug = shell.Streams.Debug.ToList(),
        Progress = shell.Streams.Progress.ToList(),
        Information = shell.Streams.Information.ToList(),
        TerminatingError = terminating,
    };

    /// <summary>Hashtable helper for <see cref="Invoke"/> variables.</summary>
    public static Dictionary<string, object?> Vars(params (string Name, object? Value)[] pairs) =>
        pairs.ToDictionary(p => p.Name, p => p.Value);

    internal static Hashtable ToHashtable(IDictionary<string, object?> values) => new(values.ToDictionary(p => p.Key, p => p.Value));
}
