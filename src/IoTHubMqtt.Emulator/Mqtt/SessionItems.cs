using System.Collections;
using System.Collections.ObjectModel;
using System.Reflection;
using MQTTnet.Server;

namespace IoTHubMqtt.Emulator.Mqtt;

/// <summary>
/// The session items of the device connections the hub accepts: one shared, empty and read-only dictionary.
/// <para>
/// MQTTnet's server gives every connection a dictionary of its own for an application's per-session state (a
/// <c>ConcurrentDictionary</c> with 31 buckets and a lock per processor: about 500 bytes, kept for as long as the device
/// stays connected, thousands of times over). The emulator keeps nothing there; a handler that tried to would fail at
/// once (the dictionary is read-only). MQTTnet offers no way to supply the dictionary, so the one it hands the validation
/// event is replaced before the session is made from it, through the compiler-generated field behind
/// <see cref="ValidatingConnectionEventArgs.SessionItems"/>; where MQTTnet's layout differs, nothing is replaced and each
/// connection keeps its own (a test checks that the replacement happens with the MQTTnet this emulator is built with).
/// </para>
/// </summary>
internal static class SessionItems
{
    private static readonly FieldInfo? Field = FindField();

    /// <summary>The dictionary every accepted device connection's session shares.</summary>
    public static IDictionary None { get; } = new ReadOnlyDictionary<object, object>(new Dictionary<object, object>());

    /// <summary>Whether the session items of a connection can be replaced (MQTTnet's layout is the one expected).</summary>
    public static bool Available => Field is not null;

    /// <summary>Makes the session about to be created for <paramref name="e"/> use <see cref="None"/>, when it can.</summary>
    public static void UseNone(ValidatingConnectionEventArgs e)
    {
        if (Field is not null && e.SessionItems is { Count: 0 })
        {
            Field.SetValue(e, None);
        }
    }

    private static FieldInfo? FindField() =>
        typeof(ValidatingConnectionEventArgs).GetField("<SessionItems>k__BackingField", BindingFlags.Instance | BindingFlags.NonPublic) is { } field
        && field.FieldType == typeof(IDictionary)
            ? field
            : null;
}
