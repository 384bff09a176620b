using System.Diagnostics;

namespace IoTHubMqtt.Module.Tests.Harness;

/// <summary>
/// Runs the built iothubmqtt-host (pwsh's console host with the module) as a child process, as CI and the README do;
/// NO_COLOR=1 unless the caller sets it, so that what the tests read is plain text whatever TERM says.
/// </summary>
public static class HostProcess
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr);

    public static Result Run(TimeSpan? timeout = null, IDictionary<string, string>? environment = null, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(TestPaths.HostAssembly);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["NO_COLOR"] = "1";
        start.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("The host did not exit in time.");
        }

        return new Result(process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    public static string WriteScript(string text)
    {
        var path = Path.Combine(Path.GetTempPath(), $"iothubmqtt-{Guid.NewGuid():N}.ps1");
        File.WriteAllText(path, text);
        return path;
    }
}
