using System.Collections.Frozen;
using System.Reflection;

namespace IoTHubMqtt.Core.Errors;

/// <summary>The catalog entry of one ErrorId constant in <see cref="ErrorIds"/>.</summary>
[AttributeUsage(AttributeTargets.Field, AllowMultiple = false, Inherited = false)]
public sealed class ErrorAttribute(IoTHubErrorKind kind, string meaning) : Attribute
{
    /// <summary>What kind of failure it is; the cmdlet layer maps it to a PowerShell ErrorCategory.</summary>
    public IoTHubErrorKind Kind { get; } = kind;

    /// <summary>What the error means, in one line.</summary>
    public string Meaning { get; } = meaning;

    /// <summary>The same request can succeed later unchanged: the module's retry loops retry it.</summary>
    public bool Transient { get; init; }
}

/// <summary>One ErrorId with its kind, whether it is transient, and its meaning.</summary>
public sealed record ErrorDefinition(string Id, IoTHubErrorKind Kind, bool Transient, string Meaning);

/// <summary>
/// The ErrorIds of <see cref="ErrorIds"/> as a table, read once from the constants' <see cref="ErrorAttribute"/>s.
/// </summary>
public static class ErrorCatalog
{
    private static readonly Lazy<FrozenDictionary<string, ErrorDefinition>> Table = new(Build);

    /// <summary>Every ErrorId the module raises, by id.</summary>
    public static IReadOnlyDictionary<string, ErrorDefinition> All => Table.Value;

    /// <summary>The entry of <paramref name="errorId"/>; an id missing from the table is a defect of the module.</summary>
    public static ErrorDefinition Get(string errorId) =>
        Table.Value.TryGetValue(errorId, out var definition)
            ? definition
            : throw new ArgumentOutOfRangeException(nameof(errorId), errorId, "The ErrorId is not in the ErrorIds table.");

    /// <summary>Whether <paramref name="errorId"/> names a transient failure (false for an id not in the table).</summary>
    public static bool IsTransient(string errorId) => Table.Value.TryGetValue(errorId, out var definition) && definition.Transient;

    private static FrozenDictionary<string, ErrorDefinition> Build() =>
        typeof(ErrorIds).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .Select(f => (Id: (string)f.GetRawConstantValue()!, Entry: f.GetCustomAttribute<ErrorAttribute>()
                ?? throw new InvalidOperationException($"ErrorIds.{f.Name} has no [Error] entry.")))
            .ToFrozenDictionary(e => e.Id, e => new ErrorDefinition(e.Id, e.Entry.Kind, e.Entry.Transient, e.Entry.Meaning), StringComparer.Ordinal);
}
