using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Help;

/// <summary>
/// Every cmdlet binds its parameters, makes one core call and writes the results: what does more (building records,
/// batching, ordering, waiting, building options) belongs in the core or in Infrastructure. Its file stays short.
/// </summary>
public sealed class CmdletSizeTests
{
    private const int MaxLines = 150;

    public static TheoryData<string> CmdletFiles() => new(Files());

    private static List<string> Files() =>
        Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "src", "IoTHubMqtt", "Commands"), "*Command.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(TestPaths.RepoRoot, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .ToList();

    [Theory]
    [MemberData(nameof(CmdletFiles))]
    public void CmdletFile_IsAtMost150Lines(string file)
    {
        var lines = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, file)).Length;
        Assert.True(lines <= MaxLines, $"{file} has {lines} lines; a cmdlet binds, makes one core call and writes: move the rest into the core or Infrastructure.");
    }
}
