using System.Text.RegularExpressions;
using IoTHubMqtt.HelpBuilder;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Help;

/// <summary>
/// Runs every example in module/help as written, each in a fresh engine. An example whose code ends with a comment
/// line '# Error: SomeErrorId' must fail with exactly that ErrorId; every other example must run without any error.
/// </summary>
public sealed partial class HelpExampleTests
{
    public static TheoryData<string, int> Examples()
    {
        var data = new TheoryData<string, int>();
        foreach (var file in Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "module", "help"), "*-*.md").Order(StringComparer.Ordinal))
        {
            var help = MarkdownReader.Read(file);
            for (var i = 0; i < help.Examples.Count; i++)
            {
                data.Add(help.Name, i);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void Example_RunsAsWritten(string cmdlet, int index)
    {
        var example = MarkdownReader.Read(Path.Combine(TestPaths.RepoRoot, "module", "help", cmdlet + ".md")).Examples[index];
        var expected = ExpectedError().Match(example.Code);
        using var ps = new PowerShellSession();

        var result = ps.Invoke(example.Code, timeout: TimeSpan.FromMinutes(1));

        var errors = result.AllErrors.ToList();
        if (expected.Success)
        {
            Assert.True(errors.Count > 0, $"{cmdlet} '{example.Title}' should fail with {expected.Groups[1].Value}");
            Assert.All(errors, e => Assert.StartsWith(expected.Groups[1].Value + ",", e.FullyQualifiedErrorId, StringComparison.Ordinal));
        }
        else
        {
            Assert.True(errors.Count == 0, $"{cmdlet} '{example.Title}': {string.Join("; ", errors.Select(e => e.FullyQualifiedErrorId + ": " + e))}");
            Assert.NotEmpty(result.Output);
        }
    }

    [GeneratedRegex(@"^#\s*Error:\s*(\w+)\s*$", RegexOptions.Multiline)]
    private static partial Regex ExpectedError();
}
