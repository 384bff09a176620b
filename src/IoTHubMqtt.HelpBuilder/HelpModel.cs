namespace IoTHubMqtt.HelpBuilder;

/// <summary>One cmdlet's help as written in platyPS-schema markdown.</summary>
public sealed class CommandHelp
{
    public required string Name { get; init; }

    public string Synopsis { get; set; } = string.Empty;

    public string Description { get; set; } = string.Empty;

    public List<SyntaxSet> Syntax { get; } = [];

    public List<ExampleHelp> Examples { get; } = [];

    public List<ParameterHelp> Parameters { get; } = [];

    public List<TypeHelp> Inputs { get; } = [];

    public List<TypeHelp> Outputs { get; } = [];

    public string Notes { get; set; } = string.Empty;

    public List<LinkHelp> RelatedLinks { get; } = [];

    public string? OnlineVersion { get; set; }

    public bool HasCommonParameters { get; set; }
}

public sealed record SyntaxSet(string Name, bool IsDefault, string Text);

public sealed record ExampleHelp(string Title, string Code, string Remarks);

public sealed record TypeHelp(string Name, string Description);

public sealed record LinkHelp(string Text, string Uri);

/// <summary>A parameter; platyPS writes one YAML block per group of parameter sets with the same attributes.</summary>
public sealed class ParameterHelp
{
    public required string Name { get; init; }

    public string Description { get; set; } = string.Empty;

    public List<ParameterSetInfo> Sets { get; } = [];
}

public sealed record ParameterSetInfo(
    string Type,
    IReadOnlyList<string> ParameterSets,
    IReadOnlyList<string> Aliases,
    bool Required,
    string Position,
    string DefaultValue,
    string PipelineInput,
    bool Wildcards)
{
    public bool AppliesTo(string set) => ParameterSets.Contains("(All)") || ParameterSets.Contains(set, StringComparer.OrdinalIgnoreCase);
}
