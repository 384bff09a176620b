namespace IoTHubMqtt.Completion;

/// <summary>The word being completed without its opening quote, and values quoted when PowerShell needs it.</summary>
internal static class CompletionText
{
    public static string Unquote(string? word)
    {
        word ??= string.Empty;
        if (word.Length > 0 && word[0] is '\'' or '"' or '\u2018' or '\u2019' or '\u201C' or '\u201D')
        {
            word = word[1..];
            if (word.Length > 0 && word[^1] is '\'' or '"' or '\u2018' or '\u2019' or '\u201C' or '\u201D')
            {
                word = word[..^1];
            }
        }

        return word;
    }

    /// <summary>Single-quoted when the value holds anything a bare PowerShell argument cannot.</summary>
    public static string Quote(string value) =>
        value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '/' or '\\' or '+' or '%' or '=' or '~')
            ? value
            : "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
}
