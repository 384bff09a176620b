using System.Management.Automation;
using System.Net;
using System.Security;

namespace IoTHubMqtt.Infrastructure;

/// <summary>
/// Lets a secret string parameter (a key, a connection string) also take a <see cref="SecureString"/> or a
/// <see cref="PSCredential"/> (its password), as PowerShell users expect for secrets.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class SecretTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var value = inputData is PSObject pso ? pso.BaseObject : inputData;
        return value switch
        {
            SecureString secure => new NetworkCredential(string.Empty, secure).Password,
            PSCredential credential => credential.GetNetworkCredential().Password,
            _ => inputData,
        };
    }
}
