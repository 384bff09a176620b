using System.Text.RegularExpressions;

namespace IoTHubMqtt.HelpBuilder;

/// <summary>
/// Where help lives outside the terminal: each cmdlet's own page is its help source in the project's repository
/// (<c>&lt;ProjectUri&gt;/blob/main/module/help/&lt;Name&gt;.md</c>), the target of <c>Get-Help -Online</c> (the MAML's first
/// related link) unless the markdown names another 'online version'.
/// </summary>
public static partial class OnlineHelp
{
    /// <summary>The manifest's PSData.ProjectUri, read from the psd1 text.</summary>
    public static string ProjectUri(string manifestPath)
    {
        var match = ProjectUriLine().Match(File.ReadAllText(manifestPath));
        return match.Success ? match.Groups[1].Value.TrimEnd('/') : throw new HelpFormatException($"{manifestPath} has no ProjectUri.");
    }

    public static string PageFor(string projectUri, string name) => $"{projectUri.TrimEnd('/')}/blob/main/module/help/{name}.md";

    [GeneratedRegex(@"ProjectUri\s*=\s*'([^']+)'")]
    private static partial Regex ProjectUriLine();
}
