using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace IoTHubMqtt.Benchmarks.Telemetry;

/// <summary>
/// A long-lived child process of the telemetry benchmark (the hub or a sender), driven by lines on its standard
/// input and answering with lines on its standard output. Senders speak one protocol: they connect every device
/// they were given and print <c>READY</c>; for each <c>RUN size devices messagesPerDevice</c> they send and print
/// <c>RESULT seconds cpuSeconds acknowledged</c> (their own clock and CPU time, from the first send to the last
/// acknowledgement); a closed standard input ends them.
/// </summary>
internal sealed class SenderProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly StringBuilder errors = new();

    private SenderProcess(string name, Process process)
    {
        Name = name;
        this.process = process;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (errors)
                {
                    errors.AppendLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
    }

    public string Name { get; }

    public int Id => process.Id;

    public static SenderProcess Start(string name, string fileName, IEnumerable<string> arguments, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
        info.Environment["POWERSHELL_UPDATECHECK"] = "Off";
        return new SenderProcess(name, Process.Start(info) ?? throw new InvalidOperationException($"{fileName} did not start."));
    }

    /// <summary>The next line that starts with <paramref name="prefix"/> (other lines are shown as they come).</summary>
    public async Task<string[]> ExpectAsync(string prefix, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        while (true)
        {
            string? line;
            try
            {
                line = await process.StandardOutput.ReadLineAsync(cancel.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{Name}: no '{prefix}' line within {timeout}. stderr: {Errors}");
            }

            if (line is null)
            {
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                throw new InvalidOperationException($"{Name} ended (exit code {process.ExitCode}) before '{prefix}'. stderr: {Errors}");
            }

            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            }

            Console.WriteLine($"  [{Name}] {line}");
        }
    }

    public async Task SendLineAsync(string line)
    {
        await process.StandardInput.WriteLineAsync(line).ConfigureAwait(false);
        await process.StandardInput.FlushAsync().ConfigureAwait(false);
    }

    /// <summary>Sends one run and waits for its result.</summary>
    public async Task<SenderResult> RunAsync(int size, int devices, int messagesPerDevice, TimeSpan timeout)
    {
        await SendLineAsync(string.Create(CultureInfo.InvariantCulture, $"RUN {size} {devices} {messagesPerDevice}")).ConfigureAwait(false);
        var parts = await ExpectAsync("RESULT", timeout).ConfigureAwait(false);
        return new SenderResult(
            double.Parse(parts[1], CultureInfo.InvariantCulture),
            double.Parse(parts[2], CultureInfo.InvariantCulture),
            long.Parse(parts[3], CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The CPU time (user and system) so far of the process and, on Linux, of every process it started (a pwsh run by
    /// `dotnet tool run` is a child of the dotnet host).
    /// </summary>
    public TimeSpan CpuTime
    {
        get
        {
            process.Refresh();
            var total = process.TotalProcessorTime;
            if (OperatingSystem.IsLinux())
            {
                foreach (var child in Descendants(process.Id))
                {
                    total += ProcessCpu(child);
                }
            }

            return total;
        }
    }

    private static IEnumerable<int> Descendants(int pid)
    {
        var children = new List<int>();
        try
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                var text = File.ReadAllText(Path.Combine(task, "children"));
                children.AddRange(text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(t => int.Parse(t, CultureInfo.InvariantCulture)));
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return children.Concat(children.SelectMany(Descendants)).ToList();
    }

    private static TimeSpan ProcessCpu(int pid)
    {
        try
        {
            using var child = Process.GetProcessById(pid);
            return child.TotalProcessorTime;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            return TimeSpan.Zero; // it ended meanwhile
        }
    }

    public string Errors
    {
        get
        {
            lock (errors)
            {
                return errors.ToString();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            process.StandardInput.Close();
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await process.WaitForExitAsync(grace.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }

        process.Dispose();
    }
}

/// <summary>What a sender measured for one run: its own elapsed time and CPU time, and the messages acknowledged.</summary>
internal sealed record SenderResult(double Seconds, double CpuSeconds, long Acknowledged);
