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

    [Theory]
    [InlineData("IoTHubMqtt.Core.Connection.IoTHubConnectionString")]
    [InlineData("IoTHubMqtt.Commands.Credentials.DeviceKeyInfo")]
    [InlineData("IoTHubMqtt.Emulator.IoTHubEmulator")]
    [InlineData("IoTHubMqtt.Emulator.EmulatorDeviceCredentials")]
    [InlineData("IoTHubMqtt.Commands.Fleet.IoTHubDevice")]
    [InlineData("IoTHubMqtt.Commands.Fleet.IoTHubRegistration")]
    [InlineData("IoTHubMqtt.Commands.Fleet.IoTHubServiceConnection")]
    public void TypesThatHoldSecrets_HaveATableAndAListView(string typeName)
    {
        // Format-List without '*' shows a type's list view; with none it would show every property, keys included.
        var doc = XDocument.Load(Path.Combine(TestPaths.ModuleDirectory, "IoTHubMqtt.format.ps1xml"));
        var controls = doc.Descendants("View")
            .Where(v => v.Element("ViewSelectedBy")?.Elements("TypeName").Any(t => t.Value.Trim() == typeName) == true)
            .SelectMany(v => v.Elements().Select(e => e.Name.LocalName))
            .ToList();

        Assert.Contains("TableControl", controls);
        Assert.Contains("ListControl", controls);
    }

    [Fact]
    public void TheModuleExtendsNoTypes()
    {
        // Types come with the properties they show (MethodName and Name are both real properties), so Import-Module
        // processes no types file: PowerShell rebuilds its type table for each module that brings one.
        Assert.False(File.Exists(Path.Combine(TestPaths.ModuleDirectory, "IoTHubMqtt.types.ps1xml")));
        Assert.DoesNotContain("TypesToProcess", File.ReadAllText(Path.Combine(TestPaths.ModuleDirectory, "IoTHubMqtt.psd1")), StringComparison.Ordinal);
    }
}
