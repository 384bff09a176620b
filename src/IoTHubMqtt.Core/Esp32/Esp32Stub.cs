using System.Text.Json;

namespace IoTHubMqtt.Core.Esp32;

/// <summary>A flasher stub (RAM program) from the embedded JSON files in Esp32/Stubs (see NOTICE.md there).</summary>
public sealed record Esp32Stub(uint Entry, uint TextStart, byte[] Text, uint DataStart, byte[] Data)
{
    public static Esp32Stub Load(Esp32ChipInfo chip)
    {
        ArgumentNullException.ThrowIfNull(chip);
        var name = "IoTHubMqtt.Core.Esp32.Stubs." + chip.StubResource;
        using var stream = typeof(Esp32Stub).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"Missing embedded stub {name}.");
        using var json = JsonDocument.Parse(stream);
        var root = json.RootElement;
        return new Esp32Stub(
            root.GetProperty("entry").GetUInt32(),
            root.GetProperty("text_start").GetUInt32(),
            Convert.FromBase64String(root.GetProperty("text").GetString() ?? string.Empty),
            root.GetProperty("data_start").GetUInt32(),
            Convert.FromBase64String(root.GetProperty("data").GetString() ?? string.Empty));
    }
}
