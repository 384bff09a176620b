using System.Diagnostics;

namespace IoTHubMqtt.Testing;

/// <summary>Runs a command-line tool with a time limit and captures its output. A missing tool is an error, never a skip.</summary>
public static class ExternalProcess
{
    /// <summary>The full path of <paramref name="tool"/> on PATH, or an exception naming the package to install.</summary>
    public static string Require(string tool, string package)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"'{tool}' is not installed; install the '{package}' package (Debian: apt-get install -y {package}).");
    }

    /// <summary>Starts a tool; the returned handle collects its output.</summary>
    public static RunningProcess Start(string path, params string[] arguments) => Start(path, new Dictionary<string, string>(), arguments);

    /// <summary>Starts a tool with <paramref name="environment"/> added to its environment; the returned handle collects its output.</summary>
    public static RunningProcess Start(string path, IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        var info = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        return new RunningProcess(Process.Start(info) ?? throw new InvalidOperationException($"Could not start {path}."));
    }

    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(string path, TimeSpan timeout, params string[] arguments)
    {
        using var process = Start(path, arguments);
        return await process.WaitAsync(timeout).ConfigureAwait(false);
    }
}

/// <summary>A started tool whose standard output lines can be awaited.</summary>
public sealed class RunningProcess : IDisposable
{
    private readonly Process process;
    private readonly System.Threading.Channels.Channel<string> lines = System.Threading.Channels.Channel.CreateUnbounded<string>();
    private readonly System.Text.StringBuilder output = new();
    private readonly System.Text.StringBuilder error = new();

    internal RunningProcess(Process process)
    {
        this.process = process;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (output)
                {
                    output.AppendLine(e.Data);
                }

                lines.Writer.TryWrite(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (error)
                {
                    error.AppendLine(e.Data);
                }
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>The operating-system process id.</summary>
    public int Id => process.Id;

    public async Task<string> ReadLineAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            return await lines.Reader.ReadAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No output line within {timeout}. stderr: {Error}");
        }
    }

    public string Error
    {
        get
        {
            lock (error)
            {
                return error.ToString();
            }
        }
    }

    public async Task<(int ExitCode, string Output, string Error)> WaitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{process.StartInfo.FileName} did not finish within {timeout}. stderr: {Error}");
        }

        process.WaitForExit(); // flush asynchronous output
        lock (output)
        {
            return (process.ExitCode, output.ToString(), Error);
        }
    }

    /// <summary>Kills the tool if it still runs (like kill -9: no clean shutdown) and waits for it to exit.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }

        process.Dispose();
    }

    private int disposed;
}
