using System.Xml.Linq;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests;

/// <summary>Checks every view and default property set the module ships, as views are added.</summary>
public sealed class FormatTests
{
    // Property names that hold keys, tokens or connection strings anywhere in the module.
    private static readonly string[] SecretProperties =
        ["SharedAccessKey", "SharedAccessSignature", "ConnectionString", "DeviceKey", "PrimaryKey", "SecondaryKey", "Key", "Token", "Password", "SasToken"];

    [Fact]
    public void FormatViews_NeverReferenceSecretProperties()
    {
        var doc = XDocument.Load(Path.Combine(TestPaths.ModuleDirectory, "IoTHubMqtt.format.ps1xml"));

        var referenced = doc.Descendants("PropertyName").Select(e => e.Value.Trim()).ToList();
        var scripts = doc.Descendants("ScriptBlock").Select(e => e.Value).ToList();

        Assert.NotEmpty(referenced);
        Assert.DoesNotContain(referenced, name => SecretProperties.Contains(name, StringComparer.OrdinalIgnoreCase));
        foreach (var script in scripts)
        {
            // Script columns may test whether a secret is present, but never print it.
            Assert.DoesNotMatch(@"\$_\.(SharedAccessKey|DeviceKey|PrimaryKey|SecondaryKey|ConnectionString|Password)\b(?!\s*\)?\s*\{)", script);
        }
    }

    [Fact]
    public void DefaultPropertySets_NeverListSecretProperties()
    {
        var doc = XDocument.Load(Path.Combine(TestPaths.ModuleDirectory, "IoTHubMqtt.types.ps1xml"));

        var names = doc.Descendants("ReferencedProperties").Elements("Name").Select(e => e.Value.Trim()).ToList();

        Assert.NotEmpty(names);
        Assert.DoesNotContain(names, name => SecretProperties.Contains(name, StringComparer.OrdinalIgnoreCase));
    }
}
