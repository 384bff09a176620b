using System.Text;

namespace IoTHubMqtt.HelpBuilder;

/// <summary>
/// Turns an about_*.md topic into the plain-text about_*.help.txt that Get-Help reads, laid out as PowerShell's own
/// topics are: TOPIC, the name as written, one blank line, SHORT DESCRIPTION, then the synopsis on the fifth line (the
/// line Get-Help shows as the topic's synopsis).
/// </summary>
public static class AboutTopicWriter
{
    public static string Convert(string markdown)
    {
        var text = new StringBuilder();
        var inCode = false;
        var inFrontMatter = false;
        var lines = markdown.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (i == 0 && line == "---")
            {
                inFrontMatter = true;
                continue;
            }

            if (inFrontMatter)
            {
                inFrontMatter = line != "---";
                continue;
            }

            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                inCode = !inCode;
                continue;
            }

            if (inCode)
            {
                text.Append("    ").AppendLine(line);
            }
            else if (line.StartsWith("# ", StringComparison.Ordinal))
            {
                text.AppendLine("TOPIC").Append("    ").AppendLine(line[2..].Trim());
            }
            else if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                if (!EndsWithBlankLine(text))
                {
                    text.AppendLine();
                }

                text.AppendLine(line[3..].Trim().ToUpperInvariant());
            }
            else if (line.StartsWith("### ", StringComparison.Ordinal))
            {
                text.AppendLine().Append("  ").AppendLine(line[4..].Trim());
            }
            else
            {
                text.Append(line.Length == 0 ? string.Empty : "    ").AppendLine(line.Replace("`", string.Empty, StringComparison.Ordinal));
            }
        }

        return text.ToString();
    }

    private static bool EndsWithBlankLine(StringBuilder text)
    {
        var newline = Environment.NewLine;
        var content = text.ToString();
        return content.EndsWith(newline + newline, StringComparison.Ordinal);
    }
}
