using System.Collections;
using System.Globalization;
using System.Management.Automation;

namespace IoTHubMqtt.Infrastructure;

/// <summary>Message properties as the Hashtable that output objects carry.</summary>
internal static class PropertyTable
{
    /// <summary>
    /// A table of <paramref name="properties"/>; looked up without regard to case when <paramref name="ignoreCase"/> and
    /// no two names differ only in case (MQTT names are case-sensitive: such a message keeps every property, exactly).
    /// </summary>
    public static Hashtable From<TValue>(IEnumerable<KeyValuePair<string, TValue>> properties, bool ignoreCase)
    {
        var table = new Hashtable(ignoreCase ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal);
        foreach (var (name, value) in properties)
        {
            if (ignoreCase && table.ContainsKey(name))
            {
                return From(properties, ignoreCase: false);
            }

            table[name] = value;
        }

        return table;
    }

    /// <summary>A -Property hashtable as name/value pairs: names as text, values unwrapped from their PSObject.</summary>
    public static IEnumerable<KeyValuePair<string, object?>> Entries(IDictionary? properties)
    {
        if (properties is null)
        {
            yield break;
        }

        foreach (DictionaryEntry entry in properties)
        {
            yield return KeyValuePair.Create(Convert.ToString(entry.Key, CultureInfo.InvariantCulture) ?? string.Empty, entry.Value is PSObject p ? p.BaseObject : entry.Value);
        }
    }
}
