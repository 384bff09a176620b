namespace IoTHubMqtt.Emulator.Hub;

/// <summary>
/// If-Match per RFC 9110 §13.1.1: "*" or a list of entity tags. The SDKs quote both ("*" included: Node's _ensureQuoted,
/// the C# SDK's ETagHolder); bare values are accepted too. Weak tags (W/"…") never match a strong comparison.
/// </summary>
internal static class IfMatch
{
    public static bool IsWildcard(string ifMatch) => ifMatch.Split(',').Any(tag => tag.Trim() is "*" or "\"*\"");

    public static bool Matches(string ifMatch, string current) =>
        ifMatch.Split(',').Select(tag => tag.Trim()).Any(tag => tag is "*" or "\"*\"" || (!tag.StartsWith("W/", StringComparison.Ordinal) && tag.Trim('"') == current));
}
