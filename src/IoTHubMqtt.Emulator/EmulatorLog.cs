namespace IoTHubMqtt.Emulator;

/// <summary>Routes log lines to the injected callback (or nowhere). Callers never pass secrets.</summary>
internal sealed class EmulatorLog(Action<EmulatorLogLevel, string>? sink)
{
    public void Verbose(string message) => Write(EmulatorLogLevel.Verbose, message);

    public void Information(string message) => Write(EmulatorLogLevel.Information, message);

    public void Warning(string message) => Write(EmulatorLogLevel.Warning, message);

    public void Error(string message) => Write(EmulatorLogLevel.Error, message);

    private void Write(EmulatorLogLevel level, string message)
    {
        if (sink is null)
        {
            return;
        }

        try
        {
            sink(level, message);
        }
#pragma warning disable CA1031 // a failing log sink must not break the hub
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}
