using System.Management.Automation;
using System.Management.Automation.Language;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Scripts;

/// <summary>
/// The PowerShell files shipped beside the module that these tests cannot run (the Pester suites and build.ps1 need
/// pwsh and Pester): they must parse, and every call of one of the module's cmdlets must name that cmdlet and
/// parameters it has, so that they do not drift from the compiled surface.
/// </summary>
public sealed class ScriptFileTests : IDisposable
{
    private static readonly string[] ModuleNouns = ["IoTHub", "Esp32", "NanoFramework"];
    private readonly PowerShellSession ps = new();

    public void Dispose() => ps.Dispose();

    public static TheoryData<string> ScriptFiles()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "tests"), "*.Tests.ps1").Append(Path.Combine(TestPaths.RepoRoot, "build.ps1")).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetRelativePath(TestPaths.RepoRoot, file));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ScriptFiles))]
    public void ScriptFile_Parses_AndCallsTheModulesCmdletsWithParametersTheyHave(string relativePath)
    {
        var path = Path.Combine(TestPaths.RepoRoot, relativePath);
        var ast = Parser.ParseFile(path, out _, out var parseErrors);
        Assert.True(parseErrors.Length == 0, string.Join(Environment.NewLine, parseErrors.Select(e => $"{relativePath}:{e.Extent.StartLineNumber}: {e.Message}")));

        var commands = ps.Invoke("Get-Command -Module IoTHubMqtt").Output.Select(o => (CommandInfo)o.BaseObject)
            .ToDictionary(c => c.Name, StringComparer.OrdinalIgnoreCase);
        Assert.NotEmpty(commands);
        var problems = new List<string>();
        var calls = 0;
        foreach (var call in ast.FindAll(a => a is CommandAst, searchNestedScriptBlocks: true).Cast<CommandAst>())
        {
            var name = call.GetCommandName();
            if (name is null || !name.Contains('-', StringComparison.Ordinal) || !ModuleNouns.Any(n => name.Contains(n, StringComparison.OrdinalIgnoreCase)))
            {
                continue;
            }

            var where = $"{relativePath}:{call.Extent.StartLineNumber}";
            if (!commands.TryGetValue(name, out var command))
            {
                // Functions the file defines itself (helpers) are not the module's.
                if (ast.Find(a => a is FunctionDefinitionAst f && string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase), true) is null)
                {
                    problems.Add($"{where}: {name} is not a command of the module");
                }

                continue;
            }

            calls++;
            foreach (var parameter in call.CommandElements.OfType<CommandParameterAst>())
            {
                var matches = command.Parameters.Values
                    .Where(p => Names(p).Any(n => n.Equals(parameter.ParameterName, StringComparison.OrdinalIgnoreCase)))
                    .ToList();
                if (matches.Count == 0)
                {
                    matches = command.Parameters.Values
                        .Where(p => Names(p).Any(n => n.StartsWith(parameter.ParameterName, StringComparison.OrdinalIgnoreCase)))
                        .ToList();
                }

                if (matches.Count != 1)
                {
                    problems.Add($"{where}: {name} -{parameter.ParameterName} {(matches.Count == 0 ? "is not a parameter" : "is ambiguous")}");
                }
            }
        }

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
        if (relativePath.EndsWith(".Tests.ps1", StringComparison.Ordinal))
        {
            Assert.True(calls > 0, $"{relativePath} calls none of the module's cmdlets");
        }

        static IEnumerable<string> Names(ParameterMetadata p) => p.Aliases.Prepend(p.Name);
    }
}
