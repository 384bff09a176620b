using System.Management.Automation;
using System.Net.Sockets;
using System.Security.Authentication;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Infrastructure;

/// <summary>
/// The one place where exceptions become ErrorRecords: a core exception keeps its ErrorId, other .NET exceptions get one of
/// the generic ErrorIds, and the category is the PowerShell side of the ErrorId's kind in <see cref="ErrorIds"/>.
/// </summary>
internal static class ErrorMapper
{
    public static bool IsMappable(Exception exception) => exception is not (PipelineStoppedException or ActionPreferenceStopException or FlowControlException);

    public static ErrorRecord ToErrorRecord(Exception exception, object? target)
    {
        if (exception is AggregateException { InnerExceptions.Count: 1 } aggregate)
        {
            exception = aggregate.InnerExceptions[0];
        }

        if (exception is IoTHubCmdletException { ErrorRecord: { } mapped })
        {
            return target is null || mapped.TargetObject is not null ? mapped : new ErrorRecord(mapped, mapped.Exception) { ErrorDetails = mapped.ErrorDetails };
        }

        string errorId;
        ErrorCategory? category = null;
        string? recommendedAction = null;
        IoTHubErrorKind? kind = null;
        switch (exception)
        {
            case IoTHubMqttException core:
                errorId = core.ErrorId;
                kind = core.Kind;
                recommendedAction = core.RecommendedAction;
                target ??= core.Target;
                break;
            case AuthenticationException:
                // A TLS failure that reached a cmdlet without passing through the core is reported as the security error it is.
                errorId = ErrorIds.TlsAuthenticationFailed;
                category = ErrorCategory.SecurityError;
                recommendedAction = "Check the CA certificate (-CaCertificatePath) and the host name.";
                break;
            default:
                errorId = exception switch
                {
                    OperationCanceledException or TimeoutException => ErrorIds.OperationTimedOut,
                    UnauthorizedAccessException => ErrorIds.AccessDenied,
                    FileNotFoundException or DirectoryNotFoundException => ErrorIds.PathNotFound,
                    SocketException or IOException { InnerException: SocketException } => ErrorIds.ConnectionFailed,
                    IOException => ErrorIds.IOError,
                    ArgumentException => ErrorIds.InvalidArgument,
                    FormatException => ErrorIds.InvalidFormat,
                    InvalidOperationException => ErrorIds.InvalidOperation,
                    _ => ErrorIds.UnexpectedError,
                };
                break;
        }

        category ??= ToCategory(kind ?? ErrorCatalog.Get(errorId).Kind);
        var record = new ErrorRecord(exception, errorId, category.Value, target);
        if (recommendedAction is not null)
        {
            record.ErrorDetails = new ErrorDetails(exception.Message) { RecommendedAction = recommendedAction };
        }

        return record;
    }

    public static ErrorCategory ToCategory(IoTHubErrorKind kind) => kind switch
    {
        IoTHubErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        IoTHubErrorKind.InvalidData => ErrorCategory.InvalidData,
        IoTHubErrorKind.InvalidOperation => ErrorCategory.InvalidOperation,
        IoTHubErrorKind.NotFound => ErrorCategory.ObjectNotFound,
        IoTHubErrorKind.AlreadyExists => ErrorCategory.ResourceExists,
        IoTHubErrorKind.Unauthorized => ErrorCategory.AuthenticationError,
        IoTHubErrorKind.PermissionDenied => ErrorCategory.PermissionDenied,
        IoTHubErrorKind.ConnectionError => ErrorCategory.ConnectionError,
        IoTHubErrorKind.Timeout => ErrorCategory.OperationTimeout,
        IoTHubErrorKind.Throttled => ErrorCategory.LimitsExceeded,
        IoTHubErrorKind.ProtocolError => ErrorCategory.ProtocolError,
        IoTHubErrorKind.ResourceBusy => ErrorCategory.ResourceBusy,
        IoTHubErrorKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        IoTHubErrorKind.NotImplemented => ErrorCategory.NotImplemented,
        IoTHubErrorKind.WriteError => ErrorCategory.WriteError,
        IoTHubErrorKind.ReadError => ErrorCategory.ReadError,
        IoTHubErrorKind.NotSpecified => ErrorCategory.NotSpecified,
        _ => ErrorCategory.NotSpecified,
    };
}
