using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>
/// Server-certificate validation: the system store (optional), the hub's public roots embedded from certs/,
/// and any extra CA file (the emulator's CA, a private gateway's root). The host name must always match.
/// </summary>
public sealed class TlsTrust
{
    private static readonly Lazy<X509Certificate2Collection> HubRoots = new(LoadEmbeddedRoots);
    private readonly X509Certificate2Collection extraRoots;
    private readonly bool useSystem;

    public TlsTrust(string? caCertificatePath, bool useSystemTrustStore)
    {
        useSystem = useSystemTrustStore;
        extraRoots = [];
        if (caCertificatePath is not null)
        {
            try
            {
                extraRoots.ImportFromPemFile(caCertificatePath);
            }
            catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or IOException)
            {
                throw new IoTHubMqttException(ErrorIds.CaCertificateInvalid,
                    $"The CA certificate file '{caCertificatePath}' could not be read as PEM: {ex.Message}", "Pass a PEM file of one or more certificates.", caCertificatePath, ex);
            }

            if (extraRoots.Count == 0)
            {
                throw new IoTHubMqttException(ErrorIds.CaCertificateInvalid,
                    $"The CA certificate file '{caCertificatePath}' holds no certificate.", "Pass a PEM file of one or more certificates.", caCertificatePath);
            }
        }
    }

    /// <summary>The public roots IoT Hub chains to (DigiCert Global Root G2, Microsoft RSA Root CA 2017).</summary>
    public static X509Certificate2Collection PublicHubRoots => HubRoots.Value;

    public bool Validate(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch) || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return false;
        }

        if (errors == SslPolicyErrors.None && useSystem)
        {
            return true;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        custom.ChainPolicy.CustomTrustStore.AddRange(HubRoots.Value);
        custom.ChainPolicy.CustomTrustStore.AddRange(extraRoots);
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using var server = new X509Certificate2(certificate);
        return custom.Build(server);
    }

    private static X509Certificate2Collection LoadEmbeddedRoots()
    {
        var roots = new X509Certificate2Collection();
        var assembly = typeof(TlsTrust).Assembly;
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.EndsWith(".pem", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            roots.ImportFromPem(reader.ReadToEnd());
        }

        return roots;
    }
}
