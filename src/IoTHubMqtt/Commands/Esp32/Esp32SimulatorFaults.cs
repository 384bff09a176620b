using System.Collections;
using System.Globalization;
using System.Management.Automation;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Esp32.Simulator;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>Start-Esp32Simulator's -Fault hashtables (Kind, Command, Occurrence, Delay) as simulator faults.</summary>
internal static class Esp32SimulatorFaults
{
    private static readonly string[] Keys = ["Kind", "Command", "Occurrence", "Delay"];

    /// <summary>The fault <paramref name="table"/> describes; Esp32SimulatorFaultInvalid for an unknown key, kind or command.</summary>
    public static SimulatorFault Parse(Hashtable table)
    {
        var values = table.Cast<DictionaryEntry>().ToDictionary(e => e.Key.ToString() ?? string.Empty, e => e.Value is PSObject p ? p.BaseObject : e.Value, StringComparer.OrdinalIgnoreCase);
        string Text(string key) => values.TryGetValue(key, out var v) && v is not null ? Convert.ToString(v, CultureInfo.InvariantCulture)! : string.Empty;
        try
        {
            if (values.Keys.FirstOrDefault(k => !Keys.Contains(k, StringComparer.OrdinalIgnoreCase)) is { } unknown)
            {
                throw new ArgumentException($"unknown key '{unknown}'");
            }

            return new SimulatorFault(
                Enum.Parse<SimulatorFaultKind>(Text("Kind"), ignoreCase: true),
                SimulatorFault.OpcodeOf(Text("Command")),
                values.ContainsKey("Occurrence") ? LanguagePrimitives.ConvertTo<int>(values["Occurrence"]) : 1,
                values.ContainsKey("Delay") ? TimeSpan.FromSeconds(LanguagePrimitives.ConvertTo<double>(values["Delay"])) : TimeSpan.Zero);
        }
        catch (Exception ex) when (ex is ArgumentException or PSInvalidCastException or FormatException)
        {
            throw new IoTHubMqttException(ErrorIds.Esp32SimulatorFaultInvalid,
                $"-Fault @{{{string.Join("; ", values.Select(v => $"{v.Key}={v.Value}"))}}} is not a fault: {ex.Message}.",
                "Use @{ Kind = 'DropResponse'; Command = 'FLASH_DEFL_DATA'; Occurrence = 2 } (Kind: " + string.Join(", ", Enum.GetNames<SimulatorFaultKind>()) + ").", null, ex);
        }
    }
}
