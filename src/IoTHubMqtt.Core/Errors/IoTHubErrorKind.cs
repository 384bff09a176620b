namespace IoTHubMqtt.Core.Errors;

/// <summary>
/// What kind of failure an <see cref="IoTHubMqttException"/> is. The cmdlet layer maps each kind to
/// one PowerShell ErrorCategory in a single place, so the core never refers to PowerShell types.
/// </summary>
public enum IoTHubErrorKind
{
    InvalidArgument,
    InvalidData,
    InvalidOperation,
    NotFound,
    AlreadyExists,
    Unauthorized,
    PermissionDenied,
    ConnectionError,
    Timeout,
    Throttled,
    ProtocolError,
    ResourceBusy,
    ResourceUnavailable,
    NotImplemented,
    WriteError,
    ReadError,

    /// <summary>A failure of no more specific kind.</summary>
    NotSpecified,
}
