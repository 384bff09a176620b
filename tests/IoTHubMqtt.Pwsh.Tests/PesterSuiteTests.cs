using System.Text;
using System.Text.Json;

namespace IoTHubMqtt.Pwsh.Tests;

/// <summary>
/// Every tests/*.Tests.ps1 suite, run by Pester in one real pwsh against the built module (IOTHUBMQTT_MODULE);
/// one test here per suite file, which fails with Pester's own messages for each failed or skipped test.
/// </summary>
public sealed class PesterSuiteTests(PesterSuiteTests.PesterRun run) : IClassFixture<PesterSuiteTests.PesterRun>
{
    public static TheoryData<string> SuiteFiles() =>
        new(Directory.GetFiles(TestPaths.TestsDirectory, "*.Tests.ps1").Select(Path.GetFileName).Order(StringComparer.Ordinal)!);

    [Theory]
    [MemberData(nameof(SuiteFiles))]
    public async Task Suite_InRealPwsh_AllTestsPass(string file)
    {
        var result = await run.Result;
        var path = Path.Combine(TestsDirectory(), file);
        var tests = result.Tests.Where(t => SamePath(t.File, path)).ToList();
        var containers = result.Containers.Where(c => SamePath(c.File, path)).ToList();
        TestContext.Current.SendDiagnosticMessage($"{file}: {tests.Count(t => t.Result == "Passed")} of {tests.Count} Pester tests passed.");

        var problems = new StringBuilder();
        foreach (var container in containers.Where(c => c.Result != "Passed"))
        {
            problems.AppendLine($"{file} (the file itself): {container.Result}").AppendLine(container.Error);
        }

        foreach (var test in tests.Where(t => t.Result != "Passed"))
        {
            problems.AppendLine($"{test.Name}: {test.Result}").AppendLine(test.Error);
        }

        Assert.True(tests.Count > 0, $"Pester ran no test from {file}.\n{problems}\n{result.Output}");
        Assert.True(problems.Length == 0, problems.ToString());
    }

    private static string TestsDirectory() => Path.GetFullPath(TestPaths.TestsDirectory);

    private static bool SamePath(string? a, string b) => a is not null && Path.GetFullPath(a) == Path.GetFullPath(b);

    public sealed record PesterTest(string? File, string? Name, string? Result, string? Error);

    public sealed record PesterResult(IReadOnlyList<PesterTest> Tests, IReadOnlyList<PesterTest> Containers, string Output);

    /// <summary>One pwsh process runs every suite (Pester's own way: one discovery, one run), once for the class.</summary>
    public sealed class PesterRun
    {
        private const string Runner = """
            param([string] $ResultPath, [string] $TestsPath, [string] $PesterVersion)
            $ErrorActionPreference = 'Stop'
            $PSStyle.OutputRendering = 'PlainText'
            Import-Module Pester -RequiredVersion $PesterVersion
            $configuration = New-PesterConfiguration
            $configuration.Run.Path = $TestsPath
            $configuration.Run.PassThru = $true
            $configuration.Output.Verbosity = 'Detailed'
            $configuration.Output.RenderMode = 'Plaintext'
            $run = Invoke-Pester -Configuration $configuration
            # The message and where in the suite it failed (Pester's own frames left out).
            function Get-ErrorText($Records) {
                ($Records | ForEach-Object { "$_`n" + (($_.ScriptStackTrace -split "`n" | Where-Object { $_ -notmatch '[\\/]Pester\.ps(m?)1:' }) -join "`n") }) -join "`n"
            }
            @{
                Tests = @($run.Tests | ForEach-Object {
                    @{ File = $_.ScriptBlock.File; Name = $_.ExpandedPath; Result = "$($_.Result)"; Error = Get-ErrorText $_.ErrorRecord }
                })
                Containers = @($run.Containers | ForEach-Object {
                    @{ File = "$($_.Item)"; Name = "$($_.Item)"; Result = "$($_.Result)"; Error = Get-ErrorText $_.ErrorRecord }
                })
            } | ConvertTo-Json -Depth 4 | Set-Content -LiteralPath $ResultPath
            """;

        public PesterRun() => Result = RunAsync();

        public Task<PesterResult> Result { get; }

        private static async Task<PesterResult> RunAsync()
        {
            var resultPath = Path.Combine(Path.GetTempPath(), $"iothubmqtt-pester-{Guid.NewGuid():N}.json");
            try
            {
                var (exitCode, output, error) = await Pwsh.RunScriptAsync(Runner, TimeSpan.FromMinutes(10), null, "-ResultPath", resultPath, "-TestsPath", TestPaths.TestsDirectory, "-PesterVersion", TestPaths.PesterVersion);
                if (!File.Exists(resultPath))
                {
                    throw new InvalidOperationException($"Pester did not finish (exit code {exitCode}).\n{output}\n{error}");
                }

                using var json = JsonDocument.Parse(await File.ReadAllTextAsync(resultPath));
                static List<PesterTest> Read(JsonElement items) => items.ValueKind == JsonValueKind.Array
                    ? items.EnumerateArray().Select(e => new PesterTest(Text(e, "File"), Text(e, "Name"), Text(e, "Result"), Text(e, "Error"))).ToList()
                    : [];
                return new PesterResult(Read(json.RootElement.GetProperty("Tests")), Read(json.RootElement.GetProperty("Containers")), output + error);
            }
            finally
            {
                File.Delete(resultPath);
            }
        }

        private static string? Text(JsonElement element, string name) =>
            element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
    }
}
