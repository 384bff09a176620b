using System.Management.Automation;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Credentials;

/// <summary>
/// <para type="synopsis">Parses an IoT Hub device, module or policy connection string into an object.</para>
/// <para type="description">Field names are case-sensitive and may come in any order; values may contain '='.
/// The key is kept in the object for the next pipeline step but is not shown in its default display.</para>
/// </summary>
[Cmdlet(VerbsData.ConvertFrom, "IoTHubConnectionString")]
[OutputType(typeof(IoTHubConnectionString))]
public sealed class ConvertFromIoTHubConnectionStringCommand : IoTHubCmdlet
{
    /// <summary>The connection string; a SecureString or PSCredential is accepted too.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SecretTransformation]
    [AllowEmptyString]
    public string ConnectionString { get; set; } = string.Empty;

    protected override void ProcessRecord()
    {
        // One bad string in a pipeline of many is a per-item error; the rest go on.
        try
        {
            WriteObject(IoTHubConnectionString.Parse(ConnectionString));
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            WriteError(ex);
        }
    }
}
