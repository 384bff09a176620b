using System.Management.Automation;
using System.Net;
using IoTHubMqtt.Core.Mqtt;

namespace IoTHubMqtt.Infrastructure;

/// <summary>
/// The connection parameters Connect-IoTHub and every device cmdlet's -ConnectionString share (-Transport, -Port,
/// -CaCertificatePath, -Proxy, -ProxyCredential), applied to a device client's options in one place.
/// </summary>
internal static class DeviceConnectionSettings
{
    /// <param name="caPath">The CA file, already resolved to a file system path (or null).</param>
    public static IoTHubDeviceClientOptions Apply(IoTHubDeviceClientOptions options, string transport, int port, string? caPath, Uri? proxy, PSCredential? proxyCredential) =>
        options with
        {
            Transport = Enum.Parse<IoTHubTransport>(transport, ignoreCase: true),
            Port = port == 0 ? null : port,
            CaCertificatePath = caPath,
            Proxy = proxy is null ? null : new WebProxy(proxy) { Credentials = proxyCredential?.GetNetworkCredential() },
        };
}
