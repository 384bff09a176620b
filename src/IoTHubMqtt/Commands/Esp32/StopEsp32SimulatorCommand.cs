using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Esp32.Simulator;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>
/// <para type="synopsis">Stops a simulated ESP32 board started with Start-Esp32Simulator.</para>
/// <para type="description">Stops the simulator given by -Simulator or the pipeline, or with no argument the one most recently started
/// in this session. Its flash can still be read (ReadFlash, SaveFlash) after it stopped.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Stop, "Esp32Simulator", SupportsShouldProcess = true)]
[OutputType(typeof(SimulatorServer))]
public sealed class StopEsp32SimulatorCommand : IoTHubCmdlet
{
    /// <summary>The simulator to stop (from Start-Esp32Simulator). Default: the last one started in this session.</summary>
    [Parameter(Position = 0, ValueFromPipeline = true)]
    public SimulatorServer? Simulator { get; set; }

    /// <summary>Writes the stopped simulator to the pipeline.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var simulator = Simulator ?? Esp32SimulatorSession.Last();
        if (simulator is null)
        {
            WriteError(new IoTHubMqttException(ErrorIds.Esp32SimulatorNotRunning,
                "No ESP32 simulator started in this session is running.", "Start one with Start-Esp32Simulator, or pass -Simulator."));
            return;
        }

        if (!ShouldProcess(simulator.ToString(), "Stop"))
        {
            return;
        }

        Run(async _ =>
        {
            await simulator.DisposeAsync().ConfigureAwait(false);
            return true;
        });
        if (PassThru)
        {
            WriteObject(simulator);
        }
    }
}

/// <summary>The simulators started in each runspace, so Stop-Esp32Simulator with no argument stops the last one started there.</summary>
internal static class Esp32SimulatorSession
{
    private static readonly RunspaceRegistry<SimulatorServer> Started = new(simulator => simulator.IsRunning);

    public static void Add(SimulatorServer simulator) => Started.Add(simulator);

    public static SimulatorServer? Last() => Started.Last();
}
