using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests;

/// <summary>The root CAs in certs/ (and shipped in the module folder) are the ones certs/README.md names.</summary>
public sealed class CertificateTests
{
    public static TheoryData<string, string, string, string, bool> Roots => new()
    {
        { "DigiCertGlobalRootG2.pem", "CB3CCBB76031E5E0138F8DD39A23F9DE47FFC35E43C1144CEA27D46A5AB1CB5F", "2013-08-01", "2038-01-15", true },
        { "MicrosoftRSARootCA2017.pem", "C741F70F4B2A8D88BF2E71C14122EF53EF10EBA0CFA5E64CFA20F418853073E0", "2019-12-18", "2042-07-18", true },
        { "BaltimoreCyberTrustRoot-legacy.pem", "16AF57A9F676B0AB126095AA5EBADEF22AB31119D644AC95CD4B93DBF3F26AEB", "2000-05-12", "2025-05-12", false },
    };

    [Theory]
    [MemberData(nameof(Roots))]
    public void RootCertificate_InRepoAndModule_HasDocumentedFingerprintAndDates(string file, string sha256, string from, string to, bool current)
    {
        foreach (var directory in new[] { Path.Combine(TestPaths.RepoRoot, "certs"), Path.Combine(TestPaths.ModuleDirectory, "certs") })
        {
            var pem = File.ReadAllText(Path.Combine(directory, file));
            using var cert = X509Certificate2.CreateFromPem(pem);

            Assert.Equal(sha256, Convert.ToHexString(SHA256.HashData(cert.RawData)));
            Assert.Equal(from, cert.NotBefore.ToUniversalTime().ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(to, cert.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(cert.Subject, cert.Issuer); // a self-signed root
            Assert.Equal(current, cert.NotAfter > new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        }
    }

    [Fact]
    public void CertsReadme_ListsEveryFingerprint()
    {
        var readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "certs", "README.md")).Replace(":", "", StringComparison.Ordinal);

        foreach (var row in Roots)
        {
            Assert.Contains((string)((ITheoryDataRow)row).GetData()[1]!, readme, StringComparison.Ordinal);
        }
    }
}
