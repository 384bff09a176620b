using IoTHubMqtt.Core.Diagnostics;

namespace IoTHubMqtt.Infrastructure;

/// <summary>
/// The core's levelled logger as a cmdlet writes it: Info, Warning and Error lines become verbose records
/// (-Verbose), Verbose lines debug records (-Debug). Lines come from any thread and are posted to the pipeline
/// thread; whether each stream is wanted is read once, on the pipeline thread, when the cmdlet starts.
/// </summary>
internal sealed class CmdletLogger(bool verbose, bool debug, Action<Action> post, Action<string> writeVerbose, Action<string> writeDebug) : IIoTHubLogger
{
    public bool IsEnabled(IoTHubLogLevel level) => level == IoTHubLogLevel.Verbose ? debug : verbose;

    public void Publish(IoTHubLogLevel level, string source, string message, Exception? exception)
    {
        if (!IsEnabled(level))
        {
            return;
        }

        var text = exception is null ? $"[{source}] {message}" : $"[{source}] {message}: {exception.Message}";
        if (level == IoTHubLogLevel.Verbose)
        {
            post(() => writeDebug(text));
        }
        else
        {
            post(() => writeVerbose(text));
        }
    }
}

/// <summary>
/// A logger that forwards to whichever logger is attached now: a connection outlives the cmdlet that made it, and its
/// lines go to the cmdlet that uses it at the moment (nowhere between cmdlets).
/// </summary>
internal sealed class ForwardingLogger : IIoTHubLogger
{
    private IIoTHubLogger? target;

    public void Attach(IIoTHubLogger logger) => Volatile.Write(ref target, logger);

    public void Detach(IIoTHubLogger logger) => Interlocked.CompareExchange(ref target, null, logger);

    public bool IsEnabled(IoTHubLogLevel level) => Volatile.Read(ref target)?.IsEnabled(level) ?? false;

    public void Publish(IoTHubLogLevel level, string source, string message, Exception? exception) =>
        Volatile.Read(ref target)?.Publish(level, source, message, exception);
}
