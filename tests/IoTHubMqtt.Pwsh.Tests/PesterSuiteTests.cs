using System.Text;
using System.Text.Json;

namespace IoTHubMqtt.Pwsh.Tests;

/// <summary>
/// Every tests/*.Tests.ps1 suite, run by Pester in real pwsh against the built module (IOTHUBMQTT_MODULE): one pwsh a
/// suite file, two at a time (the machine's two cores); one test here per suite file, which fails with Pester's own
/// messages for each failed or skipped test.
/// </summary>
public sealed class PesterSuiteTests(PesterSuiteTests.PesterRun run) : IClassFixture<PesterSuiteTests.PesterRun>
{
    public static TheoryData<string> SuiteFiles() => new(SuiteFileNames());

    private static IEnumerable<string> SuiteFileNames() =>
        Directory.GetFiles(TestPaths.TestsDirectory, "*.Tests.ps1").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal);

    [Theory]
    [MemberData(nameof(SuiteFiles))]
    public async Task Suite_InRealPwsh_AllTestsPass(string file)
    {
        var result = await run.For(file);
        var path = Path.Combine(TestsDirectory(), file);
        var tests = result.Tests.Where(t => SamePath(t.File, path)).ToList();
        var containers = result.Containers.Where(c => SamePath(c.File, path)).ToList();
        TestContext.Current.SendDiagnosticMessage($"{file}: {tests.Count(t => t.Result == "Passed")} of {tests.Count} Pester tests passed.");

        var problems = new StringBuilder();
        // A file whose BeforeAll or discovery failed (its tests then never ran); a file is also 'Failed' when one of its
        // tests is, which the tests' own lines below say.
        foreach (var container in containers.Where(c => c.Result != "Passed" && (!string.IsNullOrWhiteSpace(c.Error) || tests.Count == 0)))
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

    /// <summary>Starts every suite file at once, two pwsh processes at a time; each test awaits its own file.</summary>
    public sealed class PesterRun : IDisposable
    {
        private readonly SemaphoreSlim slots = new(2);
        private readonly Dictionary<string, Task<PesterResult>> runs;

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

        public PesterRun() => runs = SuiteFileNames().ToDictionary(file => file, RunAsync);

        public Task<PesterResult> For(string file) => runs[file];

        public void Dispose() => slots.Dispose();

        private async Task<PesterResult> RunAsync(string file)
        {
            await slots.WaitAsync();
            var resultPath = Path.Combine(Path.GetTempPath(), $"iothubmqtt-pester-{Guid.NewGuid():N}.json");
            try
            {
                // A bound against a hang, not a performance check: a loaded machine runs a suite many times slower.
                var (exitCode, output, error) = await Pwsh.RunScriptAsync(Runner, TimeSpan.FromMinutes(30), null, "-ResultPath", resultPath, "-TestsPath", Path.Combine(TestPaths.TestsDirectory, file), "-PesterVersion", TestPaths.PesterVersion);
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
                slots.Release();
            }
        }

        private static string? Text(JsonElement element, string name) =>
            element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
    }
}
