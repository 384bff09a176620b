using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Emulator.Storage;

namespace IoTHubMqtt.Emulator.Certificates;

/// <summary>
/// The emulator's TLS identity: a local CA (exported as PEM for clients to trust) and a server certificate it
/// signs for localhost, 127.0.0.1, ::1 and the configured host name; or a user-supplied PFX.
/// </summary>
internal sealed class EmulatorCertificates : IDisposable
{
    private const string CaFileName = "ca.pem";
    private const string CaKeyFileName = "ca.key.pem";

    private EmulatorCertificates(X509Certificate2 server, string caPath)
    {
        ServerCertificate = server;
        CaCertificatePath = caPath;
    }

    public X509Certificate2 ServerCertificate { get; }

    /// <summary>PEM file of the CA a client should trust.</summary>
    public string CaCertificatePath { get; }

    public static EmulatorCertificates Create(string directory, string hostName, string? pfxPath, string? pfxPassword)
    {
        Directory.CreateDirectory(directory);
        var caPath = Path.Combine(directory, CaFileName);
        if (pfxPath is not null)
        {
            X509Certificate2 pfx;
            try
            {
                pfx = new X509Certificate2(pfxPath, pfxPassword, X509KeyStorageFlags.Exportable);
            }
            catch (CryptographicException ex)
            {
                throw new IoTHubMqttException("EmulatorCertificateInvalid", IoTHubErrorKind.InvalidArgument,
                    "The server certificate file could not be read as a PFX with its password.", "Pass a PFX file holding a certificate and its private key, and its password.", pfxPath, ex);
            }

            if (!pfx.HasPrivateKey)
            {
                pfx.Dispose();
                throw new IoTHubMqttException("EmulatorCertificateNoPrivateKey", IoTHubErrorKind.InvalidArgument,
                    "The server certificate has no private key.", "Export the PFX with its private key.", pfxPath);
            }

            PrivateFiles.WriteAllText(caPath, pfx.ExportCertificatePem());
            return new EmulatorCertificates(pfx, caPath);
        }

        using var ca = LoadOrCreateCa(directory, caPath);
        return new EmulatorCertificates(CreateServerCertificate(ca, hostName), caPath);
    }

    private static X509Certificate2 LoadOrCreateCa(string directory, string caPath)
    {
        var keyPath = Path.Combine(directory, CaKeyFileName);
        if (File.Exists(caPath) && File.Exists(keyPath))
        {
            PrivateFiles.Restrict(caPath);
            PrivateFiles.Restrict(keyPath);
            try
            {
                var loaded = X509Certificate2.CreateFromPemFile(caPath, keyPath);
                if (loaded.NotAfter > DateTime.UtcNow.AddDays(1))
                {
                    return loaded;
                }

                loaded.Dispose();
            }
            catch (CryptographicException)
            {
                // fall through: make a new CA
            }
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=IoTHubMqtt Emulator Root CA, O=IoTHubMqtt", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 1, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        var ca = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(5));
        PrivateFiles.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        PrivateFiles.WriteAllText(caPath, ca.ExportCertificatePem());

        return ca;
    }

    private static X509Certificate2 CreateServerCertificate(X509Certificate2 ca, string hostName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={hostName}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        if (IPAddress.TryParse(hostName, out var hostAddress))
        {
            if (!hostAddress.Equals(IPAddress.Loopback) && !hostAddress.Equals(IPAddress.IPv6Loopback))
            {
                san.AddIpAddress(hostAddress);
            }
        }
        else if (!string.Equals(hostName, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            san.AddDnsName(hostName);
        }

        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var signed = request.Create(ca, now.AddDays(-1), now.AddDays(365) < ca.NotAfter ? now.AddDays(365) : ca.NotAfter.AddDays(-1), serial);
        using var withKey = signed.CopyWithPrivateKey(key);

        // SslStream on Linux needs a certificate whose key is not ephemeral: round-trip through PFX.
        return new X509Certificate2(withKey.Export(X509ContentType.Pfx), (string?)null, X509KeyStorageFlags.Exportable);
    }

    public void Dispose() => ServerCertificate.Dispose();
}
