namespace IoTHubMqtt.Core.Errors;

/// <summary>
/// The one exception family of the core. <see cref="ErrorId"/> is one of the <see cref="ErrorIds"/> constants (stable,
/// PascalCase, documented in help); its kind and whether it is transient come from that table. Messages never contain
/// a key, a token or a connection string.
/// </summary>
public class IoTHubMqttException : Exception
{
    /// <summary>An error whose kind and transience are the table's for <paramref name="errorId"/>.</summary>
    public IoTHubMqttException(string errorId, string message, string? recommendedAction = null, object? target = null, Exception? innerException = null)
        : this(errorId, ErrorCatalog.Get(errorId).Kind, message, recommendedAction, target, innerException)
    {
    }

    /// <summary>
    /// An error of another kind than the table's: only for the few ErrorIds that cover several situations (a client-side
    /// state error versus a lost connection, an empty argument versus an empty folder).
    /// </summary>
    public IoTHubMqttException(string errorId, IoTHubErrorKind kind, string message, string? recommendedAction = null, object? target = null, Exception? innerException = null)
        : base(message, innerException)
    {
        ArgumentException.ThrowIfNullOrEmpty(errorId);
        ErrorId = errorId;
        Kind = kind;
        RecommendedAction = recommendedAction;
        Target = target;
        IsTransient = ErrorCatalog.IsTransient(errorId);
    }

    /// <summary>Stable identifier, e.g. <c>ConnectionStringMissingHostName</c>: one of <see cref="ErrorIds"/>.</summary>
    public string ErrorId { get; }

    public IoTHubErrorKind Kind { get; }

    /// <summary>How to fix it, in one sentence, or null.</summary>
    public string? RecommendedAction { get; }

    /// <summary>What the error is about (a device id, a port, a field name), never a secret.</summary>
    public object? Target { get; }

    /// <summary>
    /// Whether trying the same request again later can succeed: the table's answer for <see cref="ErrorId"/>, unless the
    /// thrower knows better for a catch-all ErrorId (an unexpected 5xx answer is transient, an unexpected 4xx is not).
    /// </summary>
    public bool IsTransient { get; init; }
}
