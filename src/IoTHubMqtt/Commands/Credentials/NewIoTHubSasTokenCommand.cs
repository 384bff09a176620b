using System.Management.Automation;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Credentials;

/// <summary>
/// <para type="synopsis">Creates a shared access signature (SAS) token for a device, module, hub policy or DPS registration.</para>
/// <para type="description">Signs a resource URI with a base64 key, or derives resource, key and policy from a connection string.
/// The token expires at -Expiry, or after -TimeToLive (one hour by default).</para>
/// </summary>
[Cmdlet(VerbsCommon.New, "IoTHubSasToken", DefaultParameterSetName = ResourceTimeToLiveSet)]
[OutputType(typeof(string))]
public sealed class NewIoTHubSasTokenCommand : IoTHubCmdlet
{
    private const string ResourceTimeToLiveSet = "ResourceTimeToLive";
    private const string ResourceExpirySet = "ResourceExpiry";
    private const string ConnectionStringTimeToLiveSet = "ConnectionStringTimeToLive";
    private const string ConnectionStringExpirySet = "ConnectionStringExpiry";

    #region Parameters

    /// <summary>The resource to sign, e.g. <c>myhub.azure-devices.net/devices/dev1</c>.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ResourceTimeToLiveSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ResourceExpirySet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string ResourceUri { get; set; } = string.Empty;

    /// <summary>The base64 key (device key or policy key). A SecureString or PSCredential is accepted too.</summary>
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = ResourceTimeToLiveSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = ResourceExpirySet, ValueFromPipelineByPropertyName = true)]
    [Alias("SharedAccessKey")]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string Key { get; set; } = string.Empty;

    /// <summary>The shared access policy name (skn); leave out for device and module keys.</summary>
    [Parameter(ParameterSetName = ResourceTimeToLiveSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = ResourceExpirySet, ValueFromPipelineByPropertyName = true)]
    [Alias("SharedAccessKeyName", "PolicyName")]
    public string? KeyName { get; set; }

    /// <summary>A device, module or policy connection string to take resource, key and policy from.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ConnectionStringTimeToLiveSet, ValueFromPipelineByPropertyName = true)]
    [Parameter(Mandatory = true, ParameterSetName = ConnectionStringExpirySet, ValueFromPipelineByPropertyName = true)]
    [SecretTransformation]
    [ValidateNotNullOrEmpty]
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>When the token expires.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ResourceExpirySet)]
    [Parameter(Mandatory = true, ParameterSetName = ConnectionStringExpirySet)]
    public DateTimeOffset Expiry { get; set; }

    /// <summary>How long the token is valid from now; one hour when neither this nor -Expiry is given.</summary>
    [Parameter(ParameterSetName = ResourceTimeToLiveSet)]
    [Parameter(ParameterSetName = ConnectionStringTimeToLiveSet)]
    public TimeSpan TimeToLive { get; set; } = SasToken.DefaultTimeToLive;

    #endregion

    protected override void ProcessRecord()
    {
        Terminating(() =>
        {
            string resource;
            string key;
            string? policy;
            switch (ParameterSetName)
            {
                case ConnectionStringTimeToLiveSet:
                case ConnectionStringExpirySet:
                    var parsed = IoTHubConnectionString.Parse(ConnectionString);
                    if (parsed.SharedAccessKey is null)
                    {
                        throw InvalidArgument(ErrorIds.ConnectionStringHasNoKey,
                            $"The connection string for {parsed} has no SharedAccessKey to sign with.",
                            "Use a connection string with a SharedAccessKey, or -ResourceUri and -Key.");
                    }

                    resource = parsed.ResourceUri;
                    key = parsed.SharedAccessKey;
                    policy = parsed.SharedAccessKeyName;
                    break;
                default:
                    resource = ResourceUri;
                    key = Key;
                    policy = string.IsNullOrEmpty(KeyName) ? null : KeyName;
                    break;
            }

            string token;
            if (MyInvocation.BoundParameters.ContainsKey(nameof(Expiry)))
            {
                WriteVerbose($"Signing {resource}{(policy is null ? "" : $" with policy {policy}")}, valid until {Expiry.UtcDateTime:u}.");
                token = SasToken.Create(resource, key, Expiry, policy);
            }
            else
            {
                WriteVerbose($"Signing {resource}{(policy is null ? "" : $" with policy {policy}")}, valid for {TimeToLive}.");
                token = SasToken.CreateForTimeToLive(resource, key, TimeToLive, policy);
            }

            WriteObject(token);
        }, ResourceUri.Length > 0 ? ResourceUri : null);
    }
}
