using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Emulator;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Emulator;

/// <summary>
/// <para type="synopsis">Stops a local IoT Hub emulator.</para>
/// <para type="description">Stops the emulator given by -Emulator or the pipeline, or with no argument the one most recently started
/// in this session. Connected devices are disconnected; with -DataPath their state stays on disk for the next start.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Stop, "IoTHubEmulator", SupportsShouldProcess = true)]
[OutputType(typeof(IoTHubEmulator))]
public sealed class StopIoTHubEmulatorCommand : IoTHubCmdlet
{
    /// <summary>The emulator to stop (from Start-IoTHubEmulator). Default: the last one started in this session.</summary>
    [Parameter(Position = 0, ValueFromPipeline = true)]
    public IoTHubEmulator? Emulator { get; set; }

    /// <summary>Writes the stopped emulator to the pipeline.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var emulator = Emulator ?? EmulatorSession.Last();
        if (emulator is null)
        {
            WriteError(new IoTHubMqttException(ErrorIds.EmulatorNotRunning,
                "No IoT Hub emulator started in this session is running.", "Start one with Start-IoTHubEmulator, or pass -Emulator."));
            return;
        }

        if (!ShouldProcess(emulator.ToString(), "Stop"))
        {
            return;
        }

        try
        {
            Run(_ => emulator.StopAsync());
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            WriteError(ex, emulator.HostName);
            return;
        }

        if (PassThru)
        {
            WriteObject(emulator);
        }
    }
}
