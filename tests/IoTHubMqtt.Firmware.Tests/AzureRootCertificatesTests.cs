using System.Security.Cryptography.X509Certificates;

namespace IoTHubMqtt.Firmware.Tests;

public sealed class AzureRootCertificatesTests
{
    [Fact]
    public void BuiltInRoots_AreTheTwoCurrentAzureRoots_SelfSignedCAs()
    {
        var roots = new X509Certificate2Collection();
        roots.ImportFromPem(IoTHubDevice.Platform.AzureRootCertificates.Pem);

        Assert.Equal(
            ["CN=DigiCert Global Root G2, OU=www.digicert.com, O=DigiCert Inc, C=US", "CN=Microsoft RSA Root Certificate Authority 2017, O=Microsoft Corporation, C=US"],
            roots.Select(c => c.Subject));
        Assert.All(roots, c =>
        {
            Assert.Equal(c.Subject, c.Issuer);
            Assert.True(c.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
            Assert.True(c.NotAfter > new DateTime(2038, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        });
    }
}
