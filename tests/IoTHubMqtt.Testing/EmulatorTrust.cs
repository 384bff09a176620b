using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace IoTHubMqtt.Testing;

/// <summary>Validates server certificates against the emulator's CA only (custom root trust, host name checked).</summary>
public sealed class EmulatorTrust
{
    private readonly X509Certificate2 ca;

    public EmulatorTrust(string caPemPath)
    {
        ca = X509Certificate2.CreateFromPem(File.ReadAllText(caPemPath));
    }

    public bool Validate(X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch) || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }
}
