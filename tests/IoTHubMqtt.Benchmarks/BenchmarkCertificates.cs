using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace IoTHubMqtt.Benchmarks;

/// <summary>One CA and one localhost server certificate shared by both brokers, so clients do the same TLS work against each.</summary>
internal sealed class BenchmarkCertificates
{
    public required string Directory { get; init; }

    public string CaPem => Path.Combine(Directory, "ca.pem");

    public string ServerPem => Path.Combine(Directory, "server.pem");

    public string ServerKeyPem => Path.Combine(Directory, "server.key");

    public string ServerPfx => Path.Combine(Directory, "server.pfx");

    public static BenchmarkCertificates Create(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Benchmark CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var signed = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(29), RandomNumberGenerator.GetBytes(12));
        using var withKey = signed.CopyWithPrivateKey(key);

        var certs = new BenchmarkCertificates { Directory = directory };
        File.WriteAllText(certs.CaPem, ca.ExportCertificatePem());
        File.WriteAllText(certs.ServerPem, withKey.ExportCertificatePem());
        File.WriteAllText(certs.ServerKeyPem, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllBytes(certs.ServerPfx, withKey.Export(X509ContentType.Pfx, "bench"));
        return certs;
    }
}
