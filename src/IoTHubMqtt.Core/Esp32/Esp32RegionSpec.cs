using System.Globalization;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>Parses the "offset=file" pairs of a general ESP-IDF / MicroPython flash (esptool's argument style).</summary>
public static class Esp32RegionSpec
{
    /// <summary>"0x1000", "4096" or a number.</summary>
    public static uint ParseOffset(object? value)
    {
        switch (value)
        {
            case int i when i >= 0:
                return (uint)i;
            case uint u:
                return u;
            case long l when l is >= 0 and <= uint.MaxValue:
                return (uint)l;
            case string s:
                s = s.Trim();
                var ok = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                    ? uint.TryParse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var hex) ? (true, hex) : (false, 0u)
                    : uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var dec) ? (true, dec) : (false, 0u);
                if (ok.Item1)
                {
                    return ok.Item2;
                }

                break;
        }

        throw new IoTHubMqttException(ErrorIds.Esp32InvalidOffset, $"'{value}' is not a flash offset.", "Use a number such as 0x10000 or 65536.", value);
    }

    /// <summary>
    /// Offset=file pairs from hashtables (@{0x1000='bootloader.bin'}) and "0x1000=bootloader.bin" strings, in the order given;
    /// <paramref name="unwrap"/> turns a host's wrapper objects (PowerShell's PSObject) into the values they hold.
    /// </summary>
    public static IReadOnlyList<(uint Offset, string Path)> ParsePairs(IEnumerable<object?> items, Func<object?, object?>? unwrap = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        unwrap ??= value => value;
        var pairs = new List<(uint Offset, string Path)>();
        foreach (var item in items.Select(unwrap))
        {
            switch (item)
            {
                case System.Collections.IDictionary table:
                    foreach (System.Collections.DictionaryEntry entry in table)
                    {
                        pairs.Add((ParseOffset(unwrap(entry.Key)), unwrap(entry.Value)?.ToString() ?? string.Empty));
                    }

                    break;
                case string text:
                    pairs.Add(ParsePair(text));
                    break;
                default:
                    throw new IoTHubMqttException(ErrorIds.Esp32InvalidImageSpec, $"'{item}' is not offset=file or a hashtable.", "Use @{0x1000='bootloader.bin'} or '0x1000=bootloader.bin'.", item);
            }
        }

        return pairs;
    }

    /// <summary>Splits "0x10000=app.bin" into offset and path.</summary>
    public static (uint Offset, string Path) ParsePair(string pair)
    {
        ArgumentNullException.ThrowIfNull(pair);
        var at = pair.IndexOf('=', StringComparison.Ordinal);
        if (at <= 0 || at == pair.Length - 1)
        {
            throw new IoTHubMqttException(ErrorIds.Esp32InvalidImageSpec, $"'{pair}' is not offset=file.", "Use @{0x1000='bootloader.bin'} or '0x1000=bootloader.bin'.", pair);
        }

        return (ParseOffset(pair[..at]), pair[(at + 1)..].Trim());
    }
}
