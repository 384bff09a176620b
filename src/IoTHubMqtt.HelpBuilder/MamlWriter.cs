using System.Xml.Linq;

namespace IoTHubMqtt.HelpBuilder;

/// <summary>Writes MAML (the XML that Get-Help reads for binary cmdlets).</summary>
public static class MamlWriter
{
    private static readonly XNamespace Msh = "http://msh";
    private static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
    private static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    private static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";

    public static XDocument Write(IEnumerable<CommandHelp> commands)
    {
        var root = new XElement(Msh + "helpItems", new XAttribute("schema", "maml"),
            new XAttribute(XNamespace.Xmlns + "maml", Maml), new XAttribute(XNamespace.Xmlns + "command", Command), new XAttribute(XNamespace.Xmlns + "dev", Dev));
        foreach (var help in commands.OrderBy(c => c.Name, StringComparer.Ordinal))
        {
            root.Add(WriteCommand(help));
        }

        return new XDocument(new XDeclaration("1.0", "utf-8", null), root);
    }

    private static XElement WriteCommand(CommandHelp help)
    {
        var dash = help.Name.IndexOf('-', StringComparison.Ordinal);
        var setNames = help.Syntax.Count > 0
            ? help.Syntax.Select(s => s.Name).ToList()
            : help.Parameters.SelectMany(p => p.Sets).SelectMany(s => s.ParameterSets).Distinct().DefaultIfEmpty("(All)").ToList();
        return new XElement(Command + "command",
            new XElement(Command + "details",
                new XElement(Command + "name", help.Name),
                new XElement(Command + "verb", dash > 0 ? help.Name[..dash] : help.Name),
                new XElement(Command + "noun", dash > 0 ? help.Name[(dash + 1)..] : string.Empty),
                Description(help.Synopsis)),
            Description(help.Description),
            new XElement(Command + "syntax", setNames.Select(set => SyntaxItem(help, set))),
            new XElement(Command + "parameters", help.Parameters.Select(p => Parameter(p, p.Sets[0]))),
            new XElement(Command + "inputTypes", help.Inputs.Select(t => new XElement(Command + "inputType", TypeElement(t.Name), Description(t.Description)))),
            new XElement(Command + "returnValues", help.Outputs.Select(t => new XElement(Command + "returnValue", TypeElement(t.Name), Description(t.Description)))),
            new XElement(Maml + "alertSet", new XElement(Maml + "alert", Paragraphs(help.Notes))),
            new XElement(Command + "examples", help.Examples.Select(Example)),
            new XElement(Command + "relatedLinks", Links(help)));
    }

    private static XElement SyntaxItem(CommandHelp help, string set) =>
        new(Command + "syntaxItem",
            new XElement(Maml + "name", help.Name),
            help.Parameters
                .Select(p => (Parameter: p, Info: p.Sets.FirstOrDefault(s => s.AppliesTo(set))))
                .Where(x => x.Info is not null)
                .OrderBy(x => int.TryParse(x.Info!.Position, out var position) ? position : int.MaxValue)
                .Select(x => Parameter(x.Parameter, x.Info!)));

    private static XElement Parameter(ParameterHelp parameter, ParameterSetInfo info)
    {
        var isSwitch = info.Type.EndsWith("SwitchParameter", StringComparison.OrdinalIgnoreCase);
        var element = new XElement(Command + "parameter",
            new XAttribute("required", info.Required ? "true" : "false"),
            new XAttribute("variableLength", "true"),
            new XAttribute("globbing", info.Wildcards ? "true" : "false"),
            new XAttribute("pipelineInput", info.PipelineInput),
            new XAttribute("position", int.TryParse(info.Position, out _) ? info.Position : "named"),
            new XAttribute("aliases", info.Aliases.Count == 0 ? "none" : string.Join(", ", info.Aliases)),
            new XElement(Maml + "name", parameter.Name),
            Description(parameter.Description));
        if (!isSwitch)
        {
            element.Add(new XElement(Command + "parameterValue", new XAttribute("required", "true"), new XAttribute("variableLength", "false"), info.Type));
        }

        element.Add(TypeElement(info.Type), new XElement(Dev + "defaultValue", info.DefaultValue));
        return element;
    }

    private static XElement Example(ExampleHelp example, int index) =>
        new(Command + "example",
            new XElement(Maml + "title", $"-------------------------- {example.Title} --------------------------"),
            new XElement(Dev + "code", example.Code),
            new XElement(Dev + "remarks", Paragraphs(example.Remarks)));

    private static IEnumerable<XElement> Links(CommandHelp help)
    {
        if (help.OnlineVersion is not null)
        {
            yield return new XElement(Maml + "navigationLink", new XElement(Maml + "linkText", "Online Version:"), new XElement(Maml + "uri", help.OnlineVersion));
        }

        foreach (var link in help.RelatedLinks)
        {
            var uri = link.Uri.StartsWith("http", StringComparison.OrdinalIgnoreCase) ? link.Uri : string.Empty;
            yield return new XElement(Maml + "navigationLink", new XElement(Maml + "linkText", link.Text), new XElement(Maml + "uri", uri));
        }
    }

    private static XElement TypeElement(string name) => new(Dev + "type", new XElement(Maml + "name", name), new XElement(Maml + "uri"));

    private static XElement Description(string text) => new(Maml + "description", Paragraphs(text));

    private static IEnumerable<XElement> Paragraphs(string text) =>
        text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(p => new XElement(Maml + "para", p));
}
