using System.Management.Automation;
using IoTHubMqtt.HelpBuilder;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Help;

/// <summary>
/// Every exported cmdlet has complete help in module/help, and the markdown agrees with the compiled parameters.
/// New cmdlets get a skeleton with: dotnet src/IoTHubMqtt.HelpBuilder/bin/Debug/net10.0/iothubmqtt-helpbuilder.dll new out/IoTHubMqtt/&lt;version&gt;/IoTHubMqtt.psd1 module/help
/// </summary>
public sealed class HelpCoverageTests : IDisposable
{
    private readonly PowerShellSession ps = new();

    public void Dispose() => ps.Dispose();

    public static TheoryData<string> Cmdlets()
    {
        using var session = new PowerShellSession();
        var data = new TheoryData<string>();
        foreach (var item in session.Invoke("(Get-Command -Module IoTHubMqtt -CommandType Cmdlet).Name").Output)
        {
            data.Add((string)item.BaseObject);
        }

        return data;
    }

    private static CommandHelp Markdown(string cmdlet)
    {
        var path = Path.Combine(TestPaths.RepoRoot, "module", "help", cmdlet + ".md");
        Assert.True(File.Exists(path), $"{cmdlet} has no help file {path}");
        return MarkdownReader.Read(path);
    }

    [Theory]
    [MemberData(nameof(Cmdlets))]
    public void Markdown_IsComplete(string cmdlet)
    {
        var text = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "module", "help", cmdlet + ".md"));
        var help = Markdown(cmdlet);

        Assert.DoesNotContain(SkeletonWriter.FillMarker, text, StringComparison.Ordinal);
        Assert.Equal(cmdlet, help.Name);
        Assert.False(string.IsNullOrWhiteSpace(help.Synopsis));
        Assert.False(string.IsNullOrWhiteSpace(help.Description));
        Assert.True(help.Examples.Count >= 2, $"{cmdlet} needs at least two examples");
        Assert.All(help.Examples, e => Assert.False(string.IsNullOrWhiteSpace(e.Code), $"{cmdlet}: example '{e.Title}' has no code"));
        Assert.NotEmpty(help.Outputs);
        Assert.NotEmpty(help.RelatedLinks);
        Assert.True(help.HasCommonParameters);
        Assert.All(help.Parameters, p => Assert.False(string.IsNullOrWhiteSpace(p.Description), $"{cmdlet} -{p.Name} has no description"));
    }

    [Theory]
    [MemberData(nameof(Cmdlets))]
    public void Markdown_AgreesWithCompiledParameters(string cmdlet)
    {
        var help = Markdown(cmdlet);
        var info = (CmdletInfo)ps.Invoke($"Get-Command {cmdlet}").Output.Single().BaseObject;
        var compiled = SkeletonWriter.ParametersOf(info);

        Assert.Equal(compiled.Keys.Order(StringComparer.OrdinalIgnoreCase), help.Parameters.Select(p => p.Name).Order(StringComparer.OrdinalIgnoreCase), StringComparer.OrdinalIgnoreCase);
        foreach (var parameter in help.Parameters)
        {
            var metadata = info.Parameters[parameter.Name];
            foreach (var (setName, set) in metadata.ParameterSets)
            {
                var documented = parameter.Sets.FirstOrDefault(s => setName == ParameterAttribute.AllParameterSets ? s.ParameterSets.Contains("(All)") : s.AppliesTo(setName));
                Assert.True(documented is not null, $"{cmdlet} -{parameter.Name}: parameter set {setName} is not documented");
                Assert.Equal(SkeletonWriter.TypeName(metadata.ParameterType), documented.Type);
                Assert.True(set.IsMandatory == documented.Required, $"{cmdlet} -{parameter.Name} [{setName}]: Required should be {set.IsMandatory}");
                var position = set.Position == int.MinValue ? "Named" : set.Position.ToString(System.Globalization.CultureInfo.InvariantCulture);
                Assert.True(position == documented.Position, $"{cmdlet} -{parameter.Name} [{setName}]: Position should be {position}");
                Assert.True(set.ValueFromPipeline == documented.PipelineInput.Contains("ByValue", StringComparison.Ordinal), $"{cmdlet} -{parameter.Name} [{setName}]: pipeline ByValue disagrees");
                Assert.True(set.ValueFromPipelineByPropertyName == documented.PipelineInput.Contains("ByPropertyName", StringComparison.Ordinal), $"{cmdlet} -{parameter.Name} [{setName}]: pipeline ByPropertyName disagrees");
                Assert.Equal(metadata.Aliases.Order(StringComparer.OrdinalIgnoreCase), documented.Aliases.Order(StringComparer.OrdinalIgnoreCase));
            }
        }

        var compiledSets = info.ParameterSets.Select(s => s.Name).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(compiledSets, help.Syntax.Select(s => s.Name).Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Cmdlets))]
    public void GetHelp_Full_ComesFromTheCompiledMaml(string cmdlet)
    {
        var result = ps.Invoke($"$h = Get-Help {cmdlet} -Full; [pscustomobject]@{{ Synopsis = $h.Synopsis; Examples = @($h.Examples.Example).Count; Parameters = @($h.Parameters.Parameter).Count }}");

        Assert.Empty(result.AllErrors);
        var item = Assert.Single(result.Output);
        var help = Markdown(cmdlet);
        Assert.Equal(help.Synopsis, item.Properties["Synopsis"].Value);
        Assert.Equal(help.Examples.Count, item.Properties["Examples"].Value);
        Assert.Equal(help.Parameters.Count, item.Properties["Parameters"].Value);
    }

    [Fact]
    public void AboutTopic_IsShipped()
    {
        var result = ps.Invoke("Get-Help about_IoTHubMqtt");

        Assert.Empty(result.AllErrors);
        Assert.Contains("IoTHubMqtt", string.Concat(result.Output.Select(o => o.ToString())), StringComparison.Ordinal);
    }
}
