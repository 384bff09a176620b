using System.Management.Automation;
using System.Net.Sockets;
using System.Security.Authentication;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Infrastructure;

/// <summary>The one place where core exceptions become ErrorRecords with a stable ErrorId and category.</summary>
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
        ErrorCategory category;
        string? recommendedAction = null;
        switch (exception)
        {
            case IoTHubMqttException core:
                errorId = core.ErrorId;
                category = ToCategory(core.Kind);
                recommendedAction = core.RecommendedAction;
                target ??= core.Target;
                break;
            case OperationCanceledException or TimeoutException:
                errorId = "OperationTimedOut";
                category = ErrorCategory.OperationTimeout;
                break;
            case UnauthorizedAccessException:
                errorId = "AccessDenied";
                category = ErrorCategory.PermissionDenied;
                break;
            case AuthenticationException:
                errorId = "TlsAuthenticationFailed";
                category = ErrorCategory.SecurityError;
                recommendedAction = "Check the CA certificate (-CaCertificatePath) and the host name.";
                break;
            case FileNotFoundException or DirectoryNotFoundException:
                errorId = "PathNotFound";
                category = ErrorCategory.ObjectNotFound;
                break;
            case SocketException or IOException { InnerException: SocketException }:
                errorId = "ConnectionFailed";
                category = ErrorCategory.ConnectionError;
                break;
            case IOException:
                errorId = "IOError";
                category = ErrorCategory.WriteError;
                break;
            case ArgumentException:
                errorId = "InvalidArgument";
                category = ErrorCategory.InvalidArgument;
                break;
            case FormatException:
                errorId = "InvalidFormat";
                category = ErrorCategory.InvalidData;
                break;
            case InvalidOperationException:
                errorId = "InvalidOperation";
                category = ErrorCategory.InvalidOperation;
                break;
            default:
                errorId = "UnexpectedError";
                category = ErrorCategory.NotSpecified;
                break;
        }

        var record = new ErrorRecord(exception, errorId, category, target);
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
        _ => ErrorCategory.NotSpecified,
    };
}
