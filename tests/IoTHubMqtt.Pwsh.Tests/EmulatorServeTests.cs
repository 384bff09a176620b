using System.Runtime.InteropServices;
using System.Text.Json;

namespace IoTHubMqtt.Pwsh.Tests;

/// <summary>
/// The emulator as a CI job runs it: <c>Start-IoTHubEmulator -Wait -EndpointPath hub.json</c> in a background pwsh,
/// later steps reading the file, and the runner's SIGTERM (or a Ctrl+C) at the end. Whatever stops it, the temporary
/// folder with the CA key and the endpoint file are gone afterwards; so they are when a pwsh that merely holds an
/// emulator gets SIGTERM.
/// </summary>
public sealed partial class EmulatorServeTests
{
    private const int SigInt = 2;
    private const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <param name="wait">Whether the emulator is started with -Wait.</param>
    /// <param name="signal">The signal sent once the emulator is announced.</param>
    /// <param name="busyConsumer">
    /// Whether the command after Start-IoTHubEmulator -Wait is still working on the emulator when the signal lands (the stop
    /// then reaches the pipeline while the emulator is being written to it, before the wait).
    /// </param>
    [Theory]
    [InlineData(true, SigTerm, false)]
    [InlineData(true, SigInt, false)]
    [InlineData(true, SigInt, true)]
    [InlineData(false, SigTerm, false)]
    public async Task Serving_UntilASignal_ThenNoTemporaryFileIsLeft(bool wait, int signal, bool busyConsumer)
    {
        var endpointFile = Path.Combine(Path.GetTempPath(), $"iothubmqtt-endpoints-{Guid.NewGuid():N}.json");
        var consumerWork = busyConsumer ? "; Start-Sleep -Seconds 30" : string.Empty;
        var command = wait
            ? $"Import-Module $env:IOTHUBMQTT_MODULE; Start-IoTHubEmulator -Wait -EndpointPath '{endpointFile}' | ForEach-Object {{ [Console]::Out.WriteLine('serving ' + $_.DataPath){consumerWork} }}; 'after the wait'"
            : $"Import-Module $env:IOTHUBMQTT_MODULE; $hub = Start-IoTHubEmulator -EndpointPath '{endpointFile}'; [Console]::Out.WriteLine('serving ' + $hub.DataPath); Start-Sleep -Seconds 600";
        using var pwsh = Pwsh.Start(null, "-Command", command);
        string line;
        do
        {
            line = await pwsh.ReadLineAsync(TimeSpan.FromMinutes(3));
        }
        while (!line.StartsWith("serving ", StringComparison.Ordinal));

        var dataPath = line["serving ".Length..].Trim();
        Assert.True(File.Exists(Path.Combine(dataPath, "ca.pem")), $"no CA in {dataPath}");
        using (var endpoints = JsonDocument.Parse(await File.ReadAllTextAsync(endpointFile, TestContext.Current.CancellationToken)))
        {
            var root = endpoints.RootElement;
            Assert.Equal("localhost", root.GetProperty("HostName").GetString());
            Assert.InRange(root.GetProperty("MqttTlsPort").GetInt32(), 1, 65535);
            Assert.InRange(root.GetProperty("HttpsPort").GetInt32(), 1, 65535);
            Assert.Equal(Path.Combine(dataPath, "ca.pem"), root.GetProperty("CaCertificatePath").GetString());
            Assert.StartsWith("HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=", root.GetProperty("OwnerConnectionString").GetString(), StringComparison.Ordinal);
        }

        // It holds the owner key: readable by its owner only.
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(endpointFile));
        }

        Assert.Equal(0, Kill(pwsh.Id, signal));
        var (exitCode, output, error) = await pwsh.WaitAsync(TimeSpan.FromMinutes(1));

        Assert.False(Directory.Exists(dataPath), $"{dataPath} (CA key included) is left after signal {signal}.\n{output}{error}");
        Assert.False(File.Exists(endpointFile), $"{endpointFile} is left after signal {signal}.");
        Assert.DoesNotContain("after the wait", output, StringComparison.Ordinal);
        Assert.NotEqual(0, exitCode);
    }
}
