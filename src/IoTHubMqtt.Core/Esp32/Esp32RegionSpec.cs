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

        throw new IoTHubMqttException("Esp32InvalidOffset", IoTHubErrorKind.InvalidArgument, $"'{value}' is not a flash offset.", "Use a number such as 0x10000 or 65536.", value);
    }

    /// <summary>Splits "0x10000=app.bin" into offset and path.</summary>
    public static (uint Offset, string Path) ParsePair(string pair)
    {
        ArgumentNullException.ThrowIfNull(pair);
        var at = pair.IndexOf('=', StringComparison.Ordinal);
        if (at <= 0 || at == pair.Length - 1)
        {
            throw new IoTHubMqttException("Esp32InvalidImageSpec", IoTHubErrorKind.InvalidArgument, $"'{pair}' is not offset=file.", "Use @{0x1000='bootloader.bin'} or '0x1000=bootloader.bin'.", pair);
        }

        return (ParseOffset(pair[..at]), pair[(at + 1)..].Trim());
    }
}
