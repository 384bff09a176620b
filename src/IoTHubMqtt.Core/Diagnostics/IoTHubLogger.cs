namespace IoTHubMqtt.Core.Diagnostics;

/// <summary>How much a log line matters, lowest first (the levels of MQTTnet's <c>MqttNetLogLevel</c>).</summary>
public enum IoTHubLogLevel
{
    /// <summary>Detail for tracing a problem: each step of a connection, each retry's timing.</summary>
    Verbose,

    /// <summary>What a user may want to follow: connected, token renewed, disconnected.</summary>
    Info,

    /// <summary>Something went wrong and is being handled: a lost connection that is coming back, a retried request.</summary>
    Warning,

    /// <summary>Something failed for good and nothing more will be tried.</summary>
    Error,
}

/// <summary>
/// Where the core's diagnostics go (MQTTnet's <c>IMqttNetLogger</c> pattern): an interface with levels, injected
/// through the options, with <see cref="IoTHubNullLogger"/> as the default. Implementations are called from any
/// thread, must be quick and must not throw. No line ever carries a key, a token or a connection string.
/// </summary>
public interface IIoTHubLogger
{
    /// <summary>Whether lines of this level are wanted at all; callers skip building the text when not.</summary>
    bool IsEnabled(IoTHubLogLevel level);

    /// <summary>One line from <paramref name="source"/> (the part of the core that speaks, e.g. <c>Session</c>).</summary>
    void Publish(IoTHubLogLevel level, string source, string message, Exception? exception);
}

/// <summary>The logger that drops everything: the default.</summary>
public sealed class IoTHubNullLogger : IIoTHubLogger
{
    public static IoTHubNullLogger Instance { get; } = new();

    private IoTHubNullLogger()
    {
    }

    public bool IsEnabled(IoTHubLogLevel level) => false;

    public void Publish(IoTHubLogLevel level, string source, string message, Exception? exception)
    {
    }
}

/// <summary>A logger that hands every line at or above <see cref="MinimumLevel"/> to a callback (tests, simple hosts).</summary>
public sealed class IoTHubCallbackLogger(Action<IoTHubLogLevel, string> callback, IoTHubLogLevel minimumLevel = IoTHubLogLevel.Verbose) : IIoTHubLogger
{
    public IoTHubLogLevel MinimumLevel { get; } = minimumLevel;

    public bool IsEnabled(IoTHubLogLevel level) => level >= MinimumLevel;

    public void Publish(IoTHubLogLevel level, string source, string message, Exception? exception)
    {
        if (IsEnabled(level))
        {
            callback(level, exception is null ? $"[{source}] {message}" : $"[{source}] {message} ({exception.GetType().Name}: {exception.Message})");
        }
    }
}

/// <summary>A logger bound to one source, as MQTTnet's <c>MqttNetSourceLogger</c>.</summary>
public readonly struct IoTHubSourceLogger(IIoTHubLogger logger, string source)
{
    public bool IsEnabled(IoTHubLogLevel level) => logger.IsEnabled(level);

    public void Verbose(string message) => Publish(IoTHubLogLevel.Verbose, message, null);

    public void Info(string message) => Publish(IoTHubLogLevel.Info, message, null);

    public void Warning(string message, Exception? exception = null) => Publish(IoTHubLogLevel.Warning, message, exception);

    public void Error(string message, Exception? exception = null) => Publish(IoTHubLogLevel.Error, message, exception);

    private void Publish(IoTHubLogLevel level, string message, Exception? exception)
    {
        if (logger.IsEnabled(level))
        {
            logger.Publish(level, source, message, exception);
        }
    }
}

public static class IoTHubLoggerExtensions
{
    /// <summary>A logger that names <paramref name="source"/> on every line.</summary>
    public static IoTHubSourceLogger WithSource(this IIoTHubLogger logger, string source) => new(logger ?? IoTHubNullLogger.Instance, source);
}
