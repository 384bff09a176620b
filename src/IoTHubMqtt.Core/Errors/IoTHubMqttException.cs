namespace IoTHubMqtt.Core.Errors;

/// <summary>
/// The one exception family of the core. <see cref="ErrorId"/> is stable (PascalCase, documented in help);
/// messages never contain a key, a token or a connection string.
/// </summary>
public class IoTHubMqttException : Exception
{
    public IoTHubMqttException(string errorId, IoTHubErrorKind kind, string message, string? recommendedAction = null, object? target = null, Exception? innerException = null)
        : base(message, innerException)
    {
        ArgumentException.ThrowIfNullOrEmpty(errorId);
        ErrorId = errorId;
        Kind = kind;
        RecommendedAction = recommendedAction;
        Target = target;
    }

    /// <summary>Stable identifier, e.g. <c>ConnectionStringMissingHostName</c>.</summary>
    public string ErrorId { get; }

    public IoTHubErrorKind Kind { get; }

    /// <summary>How to fix it, in one sentence, or null.</summary>
    public string? RecommendedAction { get; }

    /// <summary>What the error is about (a device id, a port, a field name), never a secret.</summary>
    public object? Target { get; }
}
