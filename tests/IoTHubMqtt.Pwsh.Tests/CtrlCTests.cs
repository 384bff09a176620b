using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Pwsh.Tests;

/// <summary>
/// Ctrl+C as a terminal sends it: SIGINT to a real pwsh while one of the module's long waits runs. One pwsh reads
/// commands from its standard input (each line its own pipeline, as typed at a prompt), so one process serves every
/// case: the wait starts, a marker says it is waiting, SIGINT arrives, the next line runs, and a check shows that
/// nothing of the stopped command is left behind.
/// </summary>
public sealed partial class CtrlCTests : IAsyncLifetime
{
    private const int SigInt = 2;
    private const byte FlashDeflData = 0x11; // Espressif serial protocol: FLASH_DEFL_DATA

    private readonly Channel<string> lines = Channel.CreateUnbounded<string>();
    private readonly StringBuilder transcript = new();
    private readonly string image = Path.Combine(Path.GetTempPath(), $"iothubmqtt-ctrlc-{Guid.NewGuid():N}.bin");
    private Process? pwsh;
    private SimulatorServer? board;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    public ValueTask InitializeAsync()
    {
        // A board at a UART's pace, so that a flash of 2 MiB is still writing when Ctrl+C comes.
        board = new SimulatorServer(new SimulatorOptions { LimitRate = true });
        File.WriteAllBytes(image, FirmwareLikeBytes.Create(2 * 1024 * 1024, 17));

        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { Pwsh.PwshAssembly, "-NoProfile", "-NonInteractive", "-Command", "-" })
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in Pwsh.Environment(new Dictionary<string, string> { ["TERM"] = "dumb" }))
        {
            start.Environment[name] = value;
        }

        pwsh = Process.Start(start)!;
        pwsh.OutputDataReceived += (_, e) => Collect(e.Data);
        pwsh.ErrorDataReceived += (_, e) => Collect(e.Data);
        pwsh.BeginOutputReadLine();
        pwsh.BeginErrorReadLine();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (pwsh is not null)
        {
            if (!pwsh.HasExited)
            {
                try
                {
                    await pwsh.StandardInput.WriteLineAsync("$hub | Stop-IoTHubEmulator -Confirm:$false; exit");
                    await pwsh.StandardInput.FlushAsync();
                    pwsh.StandardInput.Close();
                    await pwsh.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
                }
                catch (Exception ex) when (ex is TimeoutException or IOException)
                {
                    pwsh.Kill(entireProcessTree: true);
                }
            }

            pwsh.Dispose();
        }

        if (board is not null)
        {
            await board.DisposeAsync();
        }

        File.Delete(image);
    }

    [Fact]
    public async Task CtrlC_StopsEachLongWaitPromptly_AndLeavesNothingRunning()
    {
        await Send(
            "Import-Module $env:IOTHUBMQTT_MODULE; $hub = Start-IoTHubEmulator; $service = $hub | Connect-IoTHubService; " +
            "$device = New-IoTHubDevice -DeviceId ctrl-c; " +
            "$conn = Connect-IoTHub -ConnectionString $device.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath; " +
            "Register-IoTHubMethod -Name ping -ScriptBlock { @{ pong = $true } }; 'setup:done'");
        await WaitFor("setup:done", TimeSpan.FromMinutes(3));

        // The marker is written by a script block after the cmdlet in the pipeline: its begin block runs once the
        // cmdlet has begun, right before the cmdlet's wait (or, for the telemetry read, the cmdlet's own verbose line
        // after it has connected; for the flash, the board seeing compressed data arrive).
        const string Marker = " | & { begin { [Console]::Out.WriteLine('waiting') } process { $_ } }; 'not reached'";
        var cases = new (string Name, string Command, Func<Task> Waiting, string Check)[]
        {
            ("Receive-IoTHubMessage", "Receive-IoTHubMessage -Timeout 600" + Marker, () => WaitFor("waiting"),
                "Send-IoTHubCloudMessage -DeviceId ctrl-c -Message after | Out-Null; if ((Receive-IoTHubMessage -Timeout 60).Body -eq 'after') { 'check:ok' }"),
            ("Wait-IoTHubMethodCall", "Wait-IoTHubMethodCall -Timeout 600" + Marker, () => WaitFor("waiting"),
                "$job = Invoke-IoTHubMethod -DeviceId ctrl-c -Name ping -Timeout 60 -AsJob; Wait-IoTHubMethodCall -Timeout 60 | Out-Null; $answer = $job | Receive-Job -Wait; $job | Remove-Job; if ($answer.Status -eq 200) { 'check:ok' }"),
            ("Receive-IoTHubTelemetry", "Receive-IoTHubTelemetry -DeviceId ctrl-c -Timeout 600 -Verbose; 'not reached'", () => WaitForPrefix("VERBOSE: Reading partitions"),
                // The next read works: telemetry sent now is read (the stopped read took nothing with it).
                "'after' | Send-IoTHubMessage -Connection $conn | Out-Null; if ((Receive-IoTHubTelemetry -DeviceId ctrl-c -StartPosition Start -Count 1 -Timeout 60).Body -eq 'after') { 'check:ok' }"),
            ("Install-Esp32Firmware", $"Install-Esp32Firmware -Port {board!.Url} -Image '0x10000={image}' -Raw -Confirm:$false; 'not reached'", WaitForFlashData,
                // The port is released and the board answers the next command.
                $"if ((Get-Esp32Device -Port {board.Url}).Chip) {{ 'check:ok' }}"),
        };

        var report = new List<string>();
        foreach (var (name, command, waiting, check) in cases)
        {
            await Send(command);
            await waiting();

            var watch = Stopwatch.StartNew();
            Assert.Equal(0, Kill(pwsh!.Id, SigInt));
            await Send($"'stopped:{name}'");
            await WaitFor($"stopped:{name}");
            watch.Stop();

            await Send(check);
            var checkLine = await WaitForPrefix("check:");
            Assert.True(checkLine == "check:ok", $"{name}: after Ctrl+C, {checkLine}\n{Transcript()}");
            report.Add($"{name}: {watch.Elapsed.TotalMilliseconds:N0} ms from SIGINT to the next command's output");

            // Ctrl+C, not the 600 s timeout, ended it (a slow machine must not fail this: the measure is reported).
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"{name} took {watch.Elapsed} to stop.\n{Transcript()}");
        }

        Assert.DoesNotContain("not reached", Transcript(), StringComparison.Ordinal);
        TestContext.Current.SendDiagnosticMessage(string.Join(Environment.NewLine, report));
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join(Environment.NewLine, report));
    }

    private async Task WaitForFlashData()
    {
        // The board has received compressed image data: the flash is writing. (The simulator runs in this process.)
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        while (board!.Simulator.CountOf(FlashDeflData) == 0)
        {
            if (pwsh!.HasExited || cts.IsCancellationRequested)
            {
                throw new TimeoutException($"The flash did not start.\n{Transcript()}");
            }

            await Task.Delay(20, CancellationToken.None);
        }
    }

    private void Collect(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (transcript)
        {
            transcript.AppendLine(line);
        }

        lines.Writer.TryWrite(line.Trim());
    }

    private string Transcript()
    {
        lock (transcript)
        {
            return transcript.ToString();
        }
    }

    private async Task Send(string line)
    {
        await pwsh!.StandardInput.WriteLineAsync(line);
        await pwsh.StandardInput.FlushAsync();
    }

    private Task WaitFor(string line) => WaitFor(line, TimeSpan.FromMinutes(2));

    private async Task WaitFor(string line, TimeSpan timeout)
    {
        while (await Next(timeout, line) != line)
        {
        }
    }

    private async Task<string> WaitForPrefix(string prefix)
    {
        while (true)
        {
            var line = await Next(TimeSpan.FromMinutes(2), prefix);
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line;
            }
        }
    }

    private async Task<string> Next(TimeSpan timeout, string waitingFor)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            return await lines.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"pwsh wrote no '{waitingFor}' within {timeout}.\n{Transcript()}");
        }
    }
}
