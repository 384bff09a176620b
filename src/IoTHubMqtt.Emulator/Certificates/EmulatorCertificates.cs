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
    private const string ServerCertificateFileName = "certificate.pem";

    private EmulatorCertificates(X509Certificate2 server, string caPath)
    {
        ServerCertificate = server;
        CaCertificatePath = caPath;
    }

    public X509Certificate2 ServerCertificate { get; }

    /// <summary>PEM file a client should trust: the generated CA (<c>ca.pem</c>), or the certificate of the user's PFX (<c>certificate.pem</c>).</summary>
    public string CaCertificatePath { get; }

    /// <summary>
    /// The server identity for <paramref name="hostName"/>: from the user's PFX, or signed by the CA kept in
    /// <paramref name="directory"/> (made there the first time). A CA that is there but damaged, half missing or expired is
    /// an error naming the file; it is replaced only when <paramref name="replaceCa"/> asks for it, since clients trust it.
    /// Validity is on the system clock, which is what TLS peers check it against.
    /// </summary>
    public static EmulatorCertificates Create(string directory, string hostName, string? pfxPath, string? pfxPassword, bool replaceCa, EmulatorLog log)
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
                throw new IoTHubMqttException(ErrorIds.EmulatorCertificateInvalid,
                    $"The server certificate file '{pfxPath}' could not be read as a PFX with its password.", "Pass a PFX file holding a certificate and its private key, and its password.", pfxPath, ex);
            }

            if (!pfx.HasPrivateKey)
            {
                pfx.Dispose();
                throw new IoTHubMqttException(ErrorIds.EmulatorCertificateNoPrivateKey,
                    $"The server certificate in '{pfxPath}' has no private key.", "Export the PFX with its private key.", pfxPath);
            }

            // Exported beside the generated CA, never over it: that CA is still there for a start without the PFX.
            var certificatePath = Path.Combine(directory, ServerCertificateFileName);
            PrivateFiles.WriteAllText(certificatePath, pfx.ExportCertificatePem());
            return new EmulatorCertificates(pfx, certificatePath);
        }

        using var ca = LoadOrCreateCa(directory, caPath, replaceCa, log);
        return new EmulatorCertificates(CreateServerCertificate(ca, hostName), caPath);
    }

    private static X509Certificate2 LoadOrCreateCa(string directory, string caPath, bool replace, EmulatorLog log)
    {
        var keyPath = Path.Combine(directory, CaKeyFileName);
        var caExists = File.Exists(caPath);
        var keyExists = File.Exists(keyPath);
        if ((caExists || keyExists) && !replace)
        {
            if (!keyExists)
            {
                throw CaInvalid(keyPath, $"the CA's private key '{keyPath}' is missing (its certificate '{caPath}' is there)", null);
            }

            if (!caExists)
            {
                throw CaInvalid(caPath, $"the CA certificate '{caPath}' is missing (its key '{keyPath}' is there)", null);
            }

            X509Certificate2 loaded;
            try
            {
                PrivateFiles.Restrict(caPath);
                PrivateFiles.Restrict(keyPath);
                loaded = X509Certificate2.CreateFromPemFile(caPath, keyPath);
            }
            catch (CryptographicException ex)
            {
                var certificateReads = CertificateReads(caPath);
                var bad = certificateReads ? keyPath : caPath;
                throw CaInvalid(bad, certificateReads
                    ? $"the CA's private key '{keyPath}' is damaged or does not belong to the certificate '{caPath}'"
                    : $"the CA certificate '{caPath}' is damaged", ex);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw CaInvalid(caPath, $"the CA files '{caPath}' and '{keyPath}' cannot be read ({ex.Message})", ex);
            }

            if (loaded.NotAfter.ToUniversalTime() <= DateTime.UtcNow.AddDays(1))
            {
                var expiry = loaded.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture);
                loaded.Dispose();
                throw new IoTHubMqttException(ErrorIds.EmulatorCaExpired,
                    $"The emulator's CA '{caPath}' expires {expiry}: server certificates it signs would not be trusted.",
                    $"Delete '{caPath}' and '{keyPath}' to have the emulator make a new CA, then give clients the new ca.pem.", caPath);
            }

            return loaded;
        }

        if (caExists || keyExists)
        {
            log.Warning($"Making a new CA in '{directory}' as asked: clients must trust the new '{caPath}'.");
        }
        else
        {
            log.Information($"Making a new CA in '{directory}' ('{caPath}' is what clients trust).");
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

    private static bool CertificateReads(string caPath)
    {
        try
        {
            using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(caPath));
            return true;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    private static IoTHubMqttException CaInvalid(string path, string detail, Exception? inner) => new(
        ErrorIds.EmulatorCaInvalid,
        $"The emulator's CA cannot be used: {detail}. It is not replaced on its own, since clients trust it.",
        "Put back ca.pem and ca.key.pem from a copy (they belong together); or delete both, or start the emulator asking for a new CA " +
        "(IoTHubEmulatorOptions.ReplaceCertificateAuthority, standalone --new-ca), and give clients the new ca.pem.",
        path, inner);

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
