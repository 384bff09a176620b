using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace IoTHubMqtt.Benchmarks.Telemetry;

/// <summary>
/// Send-IoTHubMessage in a PowerShell 7.6 engine hosted by this program (System.Management.Automation), running the
/// same TelemetrySender.ps1 as real pwsh does: the cmdlet without pwsh's own start-up and console host.
/// </summary>
internal static class EngineSender
{
    public const string Command = "telemetry-engine-sender";

    /// <summary>Arguments: the module manifest, the devices file, the hub's MQTT/TLS port, its CA file and the window.</summary>
    public static int Run(string[] args)
    {
        using var runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault2());
        runspace.Open();
        using var shell = PowerShell.Create();
        shell.Runspace = runspace;
        shell.AddCommand(Path.Combine(AppContext.BaseDirectory, "Telemetry", "TelemetrySender.ps1"))
            .AddParameter("Manifest", args[0])
            .AddParameter("DevicesFile", args[1])
            .AddParameter("Port", int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture))
            .AddParameter("CaCertificatePath", args[3])
            .AddParameter("Window", int.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture));
        shell.Invoke();
        foreach (var error in shell.Streams.Error)
        {
            Console.Error.WriteLine(error.ToString());
        }

        return shell.HadErrors ? 1 : 0;
    }
}
