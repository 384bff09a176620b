using System.Management.Automation;

namespace IoTHubMqtt.Infrastructure;

/// <summary>
/// A core failure already turned into its ErrorRecord (stable ErrorId, category, fix). Thrown by
/// <see cref="IoTHubCmdlet"/>'s Run so that an exception escaping a cmdlet keeps its ErrorId.
/// </summary>
public sealed class IoTHubCmdletException : RuntimeException
{
    public IoTHubCmdletException(ErrorRecord errorRecord)
        : base(errorRecord?.Exception.Message, errorRecord?.Exception, errorRecord)
    {
    }

    public IoTHubCmdletException()
    {
    }

    public IoTHubCmdletException(string message)
        : base(message)
    {
    }

    public IoTHubCmdletException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
