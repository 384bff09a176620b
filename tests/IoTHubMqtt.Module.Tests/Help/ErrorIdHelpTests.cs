using System.Management.Automation;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using IoTHubMqtt.HelpBuilder;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Help;

/// <summary>
/// The help and the ErrorIds table agree: about_IoTHubMqtt_ErrorIds is the table as users read it (ErrorId, the
/// ErrorRecord's category, transient or not, meaning), and every ErrorId a help page names is in the table. The table is
/// read from the module as it is loaded in PowerShell, and the category is the one its error mapping gives.
/// </summary>
public sealed partial class ErrorIdHelpTests
{
    private const string TopicName = "about_IoTHubMqtt_ErrorIds";
    private static readonly Lazy<IReadOnlyDictionary<string, Entry>> Table = new(Load);

    public sealed record Entry(string Id, string Category, bool Transient, string Meaning);

    /// <summary>The module's ErrorIds table, by id, with the PowerShell ErrorCategory each maps to.</summary>
    public static IReadOnlyDictionary<string, Entry> Catalog() => Table.Value;

    [Fact]
    public void AboutTopic_IsTheTable()
    {
        var path = Path.Combine(TestPaths.RepoRoot, "module", "help", TopicName + ".md");
        var expected = Render(Catalog().Values);
        if (Environment.GetEnvironmentVariable("IOTHUBMQTT_WRITE_ERRORIDS_HELP") == "1")
        {
            File.WriteAllText(path, expected);
        }

        Assert.True(File.Exists(path) && File.ReadAllText(path).ReplaceLineEndings("\n") == expected,
            $"{TopicName}.md differs from the ErrorIds table: run this test with IOTHUBMQTT_WRITE_ERRORIDS_HELP=1 to write it again.");
    }

    [Fact]
    public void EveryErrorId_IsDocumented_InACmdletsHelpOrAnAboutTopic()
    {
        var documented = Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "module", "help"), "*.md")
            .SelectMany(DocumentedIds)
            .ToHashSet(StringComparer.Ordinal);

        Assert.All(Catalog().Keys, id => Assert.True(documented.Contains(id), $"ErrorId {id} is in no help page."));
    }

    [Fact]
    public void EveryErrorIdTheHelpNames_IsInTheTable()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "module", "help"), "*.md"))
        {
            Assert.All(DocumentedIds(file), id => Assert.True(Catalog().ContainsKey(id), $"{Path.GetFileName(file)} names ErrorId {id}, which is not in the ErrorIds table."));
        }
    }

    /// <summary>
    /// The ErrorIds a help page names: a cmdlet's NOTES after "ErrorIds:", the first column of an about topic's table
    /// headed "ErrorId".
    /// </summary>
    private static IEnumerable<string> DocumentedIds(string file)
    {
        var name = Path.GetFileNameWithoutExtension(file);
        if (!name.StartsWith("about_", StringComparison.Ordinal))
        {
            var notes = MarkdownReader.Read(file).Notes;
            var at = notes.IndexOf("ErrorIds:", StringComparison.Ordinal);
            return at < 0 ? [] : BacktickedRegex().Matches(notes[at..]).Select(m => m.Groups[1].Value);
        }

        var ids = new List<string>();
        var inTable = false;
        foreach (var line in File.ReadLines(file))
        {
            if (!line.StartsWith('|'))
            {
                inTable = false;
                continue;
            }

            var cells = line.Split('|');
            if (cells[1].Trim() == "ErrorId")
            {
                inTable = true;
            }
            else if (inTable)
            {
                ids.AddRange(BacktickedRegex().Matches(cells[1]).Select(m => m.Groups[1].Value));
            }
        }

        return ids;
    }

    private static string Render(IEnumerable<Entry> entries)
    {
        var text = new StringBuilder();
        text.Append("# ").Append(TopicName).Append("\n\n");
        text.Append("## SHORT DESCRIPTION\nEvery ErrorId of the module's errors: its category, whether it is transient, and what it means.\n\n");
        text.Append("## LONG DESCRIPTION\n\n");
        text.Append("Every error IoTHubMqtt writes is an ErrorRecord whose FullyQualifiedErrorId starts with one of the ErrorIds\n");
        text.Append("below (for example `KeyNotBase64,IoTHubMqtt.Commands.Credentials.NewIoTHubSasTokenCommand`), whose CategoryInfo.Category\n");
        text.Append("is the category given here, and whose ErrorDetails.RecommendedAction says what to do. ErrorIds never change\n");
        text.Append("name: match them in scripts with `$_.FullyQualifiedErrorId -like 'DeviceNotFound,*'` or\n");
        text.Append("`Should -Throw -ErrorId DeviceNotFound`.\n\n");
        text.Append("A transient error is one where the same request can succeed later unchanged. The module has already retried it\n");
        text.Append("(with backoff, or as long as the hub asked with Retry-After) before writing it, so a script that retries again\n");
        text.Append("should wait first. The other errors need a change (an argument, a credential, the device's state) first.\n");
        text.Append("IoTHubRequestFailed and TwinRequestFailed cover unexpected status codes: transient for a 5xx answer only.\n\n");
        text.Append("Each cmdlet's help lists, under NOTES, the ErrorIds it raises.\n\n");
        text.Append("### ErrorIds\n\n");
        text.Append("| ErrorId | Category | Transient | Meaning |\n|---|---|---|---|\n");
        foreach (var e in entries.OrderBy(e => e.Id, StringComparer.Ordinal))
        {
            text.Append("| `").Append(e.Id).Append("` | ").Append(e.Category).Append(" | ").Append(e.Transient ? "yes" : "no").Append(" | ")
                .Append(e.Meaning.Replace("|", "\\|", StringComparison.Ordinal)).Append(" |\n");
        }

        text.Append("\n## SEE ALSO\n\n- about_IoTHubMqtt\n- about_IoTHubMqtt_Esp32\n- about_IoTHubMqtt_Emulator\n");
        return text.ToString();
    }

    private static IReadOnlyDictionary<string, Entry> Load()
    {
        using var ps = new PowerShellSession();
        var module = ((CmdletInfo)ps.Invoke("Get-Command Send-IoTHubMessage").Output.Single().BaseObject).ImplementingType.Assembly;
        var toCategory = module.GetType("IoTHubMqtt.Infrastructure.ErrorMapper", throwOnError: true)!.GetMethod("ToCategory", BindingFlags.Public | BindingFlags.Static)!;
        var core = toCategory.GetParameters()[0].ParameterType.Assembly;
        var all = (System.Collections.IEnumerable)core.GetType("IoTHubMqtt.Core.Errors.ErrorCatalog", throwOnError: true)!.GetProperty("All")!.GetValue(null)!;
        var table = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var pair in all)
        {
            var definition = pair.GetType().GetProperty("Value")!.GetValue(pair)!;
            var type = definition.GetType();
            var id = (string)type.GetProperty("Id")!.GetValue(definition)!;
            var category = toCategory.Invoke(null, [type.GetProperty("Kind")!.GetValue(definition)])!.ToString()!;
            table[id] = new Entry(id, category, (bool)type.GetProperty("Transient")!.GetValue(definition)!, (string)type.GetProperty("Meaning")!.GetValue(definition)!);
        }

        return table;
    }

    [GeneratedRegex(@"`([A-Z][A-Za-z0-9]+)`")]
    private static partial Regex BacktickedRegex();
}
