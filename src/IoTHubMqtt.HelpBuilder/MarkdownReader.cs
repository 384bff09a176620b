using System.Text;
using System.Text.RegularExpressions;

namespace IoTHubMqtt.HelpBuilder;

/// <summary>
/// Reads platyPS schema 2.0.0 cmdlet markdown: front matter, then '## SYNOPSIS', 'SYNTAX', 'DESCRIPTION', 'EXAMPLES',
/// 'PARAMETERS' (one '### -Name' each with YAML blocks), 'INPUTS', 'OUTPUTS', 'NOTES', 'RELATED LINKS'.
/// See https://github.com/PowerShell/platyPS/blob/master/platyPS.schema.md
/// </summary>
public static partial class MarkdownReader
{
    public static CommandHelp Read(string path) => Parse(File.ReadAllText(path), Path.GetFileNameWithoutExtension(path));

    public static CommandHelp Parse(string text, string fallbackName)
    {
        text = text.Replace("\r\n", "\n", StringComparison.Ordinal);
        string? online = null;
        if (text.StartsWith("---\n", StringComparison.Ordinal))
        {
            var end = text.IndexOf("\n---\n", 4, StringComparison.Ordinal);
            if (end < 0)
            {
                throw new HelpFormatException($"{fallbackName}: the front matter has no closing '---'.");
            }

            foreach (var line in text[4..end].Split('\n'))
            {
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0 && line[..colon].Trim() == "online version")
                {
                    online = line[(colon + 1)..].Trim();
                }
            }

            text = text[(end + 5)..];
        }

        var titleMatch = TitleRegex().Match(text);
        var help = new CommandHelp { Name = titleMatch.Success ? titleMatch.Groups[1].Value.Trim() : fallbackName, OnlineVersion = string.IsNullOrEmpty(online) ? null : online };
        foreach (var (heading, body) in Sections(text, "## "))
        {
            switch (heading.ToUpperInvariant())
            {
                case "SYNOPSIS":
                    help.Synopsis = Prose(body);
                    break;
                case "SYNTAX":
                    foreach (var (setHeading, setBody) in Sections(body, "### "))
                    {
                        var isDefault = setHeading.EndsWith("(Default)", StringComparison.Ordinal);
                        var name = isDefault ? setHeading[..^"(Default)".Length].Trim() : setHeading.Trim();
                        help.Syntax.Add(new SyntaxSet(name, isDefault, CodeBlocks(setBody).FirstOrDefault() ?? string.Empty));
                    }

                    break;
                case "DESCRIPTION":
                    help.Description = Prose(body);
                    break;
                case "EXAMPLES":
                    foreach (var (title, exampleBody) in Sections(body, "### "))
                    {
                        var code = CodeBlocks(exampleBody).FirstOrDefault() ?? string.Empty;
                        help.Examples.Add(new ExampleHelp(title.Trim(), code, ProseKeepingCode(RemoveFirstCodeBlock(exampleBody))));
                    }

                    break;
                case "PARAMETERS":
                    foreach (var (parameterHeading, parameterBody) in Sections(body, "### "))
                    {
                        if (parameterHeading.Trim() == "CommonParameters")
                        {
                            help.HasCommonParameters = true;
                            continue;
                        }

                        help.Parameters.Add(ReadParameter(help.Name, parameterHeading.Trim(), parameterBody));
                    }

                    break;
                case "INPUTS":
                    help.Inputs.AddRange(Sections(body, "### ").Select(s => new TypeHelp(s.Heading.Trim(), Prose(s.Body))));
                    break;
                case "OUTPUTS":
                    help.Outputs.AddRange(Sections(body, "### ").Select(s => new TypeHelp(s.Heading.Trim(), Prose(s.Body))));
                    break;
                case "NOTES":
                    help.Notes = Prose(body);
                    break;
                case "RELATED LINKS":
                    foreach (Match link in LinkRegex().Matches(body))
                    {
                        help.RelatedLinks.Add(new LinkHelp(link.Groups[1].Value, link.Groups[2].Value));
                    }

                    break;
            }
        }

        return help;
    }

    private static ParameterHelp ReadParameter(string command, string heading, string body)
    {
        if (!heading.StartsWith('-'))
        {
            throw new HelpFormatException($"{command}: parameter heading '### {heading}' must start with '-'.");
        }

        var parameter = new ParameterHelp { Name = heading[1..], Description = Prose(RemoveCodeBlocks(body)) };
        foreach (var yaml in CodeBlocks(body, "yaml"))
        {
            var fields = yaml.Split('\n').Select(l => l.Split(':', 2)).Where(p => p.Length == 2)
                .ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
            string Field(string name, string fallback) => fields.TryGetValue(name, out var v) && v.Length > 0 ? v : fallback;
            static List<string> List(string value) => value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
            parameter.Sets.Add(new ParameterSetInfo(
                Field("Type", "Object"),
                List(Field("Parameter Sets", "(All)")),
                List(Field("Aliases", string.Empty)),
                string.Equals(Field("Required", "False"), "True", StringComparison.OrdinalIgnoreCase),
                Field("Position", "Named"),
                Field("Default value", "None"),
                Field("Accept pipeline input", "False"),
                string.Equals(Field("Accept wildcard characters", "False"), "True", StringComparison.OrdinalIgnoreCase)));
        }

        if (parameter.Sets.Count == 0)
        {
            throw new HelpFormatException($"{command}: parameter -{parameter.Name} has no ```yaml block.");
        }

        return parameter;
    }

    /// <summary>Splits text at lines starting with <paramref name="marker"/> (outside code blocks).</summary>
    public static IEnumerable<(string Heading, string Body)> Sections(string text, string marker)
    {
        string? heading = null;
        var body = new StringBuilder();
        var inCode = false;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                inCode = !inCode;
            }

            if (!inCode && line.StartsWith(marker, StringComparison.Ordinal))
            {
                if (heading is not null)
                {
                    yield return (heading, body.ToString());
                }

                heading = line[marker.Length..];
                body.Clear();
            }
            else if (heading is not null)
            {
                body.Append(line).Append('\n');
            }
        }

        if (heading is not null)
        {
            yield return (heading, body.ToString());
        }
    }

    public static IEnumerable<string> CodeBlocks(string text, string? language = null)
    {
        foreach (Match match in CodeBlockRegex().Matches(text))
        {
            if (language is null || string.Equals(match.Groups[1].Value, language, StringComparison.OrdinalIgnoreCase))
            {
                yield return match.Groups[2].Value.TrimEnd('\n');
            }
        }
    }

    private static string RemoveCodeBlocks(string text) => CodeBlockRegex().Replace(text, string.Empty);

    private static string RemoveFirstCodeBlock(string text) => CodeBlockRegex().Replace(text, string.Empty, 1);

    /// <summary>Paragraphs separated by blank lines, each joined into one line.</summary>
    public static string Prose(string text)
    {
        var paragraphs = text.Trim().Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(p => string.Join(' ', p.Split('\n').Select(l => l.Trim())).Trim())
            .Where(p => p.Length > 0);
        return string.Join("\n\n", paragraphs);
    }

    /// <summary>Like <see cref="Prose"/>, but code blocks (sample output) stay as verbatim paragraphs.</summary>
    public static string ProseKeepingCode(string text)
    {
        var parts = new List<string>();
        var last = 0;
        foreach (Match match in CodeBlockRegex().Matches(text))
        {
            parts.Add(Prose(text[last..match.Index]));
            parts.Add(match.Groups[2].Value.TrimEnd('\n'));
            last = match.Index + match.Length;
        }

        parts.Add(Prose(text[last..]));
        return string.Join("\n\n", parts.Where(p => p.Length > 0));
    }

    [GeneratedRegex(@"^# (.+)$", RegexOptions.Multiline)]
    private static partial Regex TitleRegex();

    [GeneratedRegex(@"^```([A-Za-z0-9]*)\n(.*?)^```\s*$", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex CodeBlockRegex();

    [GeneratedRegex(@"\[([^\]]+)\]\(([^)]*)\)")]
    private static partial Regex LinkRegex();
}

public sealed class HelpFormatException(string message) : Exception(message);
