using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Text;

namespace IoTHubMqtt.HelpBuilder;

/// <summary>
/// Writes a platyPS-schema markdown skeleton for each exported cmdlet that has no help file yet, from the compiled
/// cmdlet's parameter metadata (as platyPS New-MarkdownHelp does). Descriptions are left as '{{ Fill … }}' markers,
/// which the help tests reject until they are written.
/// </summary>
public static class SkeletonWriter
{
    public const string FillMarker = "{{ Fill";

    public static IReadOnlyList<string> WriteMissing(string moduleManifest, string helpDirectory)
    {
        var state = InitialSessionState.CreateDefault2();
        state.ImportPSModule(Path.GetFullPath(moduleManifest));
        using var runspace = RunspaceFactory.CreateRunspace(state);
        runspace.Open();
        using var shell = PowerShell.Create();
        shell.Runspace = runspace;
        var commands = shell.AddScript("Get-Command -Module IoTHubMqtt -CommandType Cmdlet").Invoke<CmdletInfo>();
        var written = new List<string>();
        foreach (var command in commands)
        {
            var path = Path.Combine(helpDirectory, command.Name + ".md");
            if (!File.Exists(path))
            {
                File.WriteAllText(path, Skeleton(command));
                written.Add(path);
            }
        }

        return written;
    }

    public static string Skeleton(CmdletInfo command)
    {
        var text = new StringBuilder();
        text.Append("---\nexternal help file: IoTHubMqtt.dll-Help.xml\nModule Name: IoTHubMqtt\nonline version:\nschema: 2.0.0\n---\n\n");
        text.Append("# ").Append(command.Name).Append("\n\n## SYNOPSIS\n").Append(FillMarker).Append(" synopsis }}\n\n## SYNTAX\n\n");
        foreach (var set in command.ParameterSets)
        {
            text.Append("### ").Append(set.Name).Append(set.IsDefault && command.ParameterSets.Count > 1 ? " (Default)" : string.Empty)
                .Append("\n```\n").Append(command.Name).Append(' ').Append(set.ToString()).Append("\n```\n\n");
        }

        text.Append("## DESCRIPTION\n").Append(FillMarker).Append(" description }}\n\n## EXAMPLES\n\n### Example 1\n```powershell\n")
            .Append(FillMarker).Append(" example }}\n```\n\n").Append(FillMarker).Append(" remarks }}\n\n## PARAMETERS\n\n");
        foreach (var parameter in ParametersOf(command))
        {
            text.Append("### -").Append(parameter.Key).Append('\n').Append(FillMarker).Append(' ').Append(parameter.Key).Append(" description }}\n\n");
            foreach (var group in parameter.Value)
            {
                text.Append("```yaml\n").Append(group).Append("```\n\n");
            }
        }

        text.Append("### CommonParameters\nThis cmdlet supports the common parameters: -Debug, -ErrorAction, -ErrorVariable, -InformationAction, -InformationVariable, -OutVariable, -OutBuffer, -PipelineVariable, -ProgressAction, -Verbose, -WarningAction, and -WarningVariable. For more information, see [about_CommonParameters](http://go.microsoft.com/fwlink/?LinkID=113216).\n\n");
        text.Append("## INPUTS\n\n### None\n\n## OUTPUTS\n\n");
        foreach (var type in command.OutputType)
        {
            text.Append("### ").Append(type.Name).Append("\n\n");
        }

        text.Append("## NOTES\n\n## RELATED LINKS\n\n[about_IoTHubMqtt](about_IoTHubMqtt.md)\n");
        return text.ToString();
    }

    /// <summary>Per parameter, the YAML blocks: one per distinct attribute combination across sets.</summary>
    public static Dictionary<string, List<string>> ParametersOf(CmdletInfo command)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
        // -WhatIf and -Confirm are documented per cmdlet, as platyPS does; the other common parameters are not.
        var common = new HashSet<string>(PSCmdlet.CommonParameters.Append("UseTransaction"), StringComparer.OrdinalIgnoreCase);
        foreach (var parameter in command.Parameters.Values.Where(p => !common.Contains(p.Name)))
        {
            var groups = parameter.ParameterSets
                .GroupBy(s => Yaml(parameter, ["(placeholder)"], s.Value))
                .Select(g => Yaml(parameter, g.Select(s => s.Key).ToList(), g.First().Value))
                .ToList();
            result[parameter.Name] = groups;
        }

        return result;
    }

    public static string Yaml(ParameterMetadata parameter, IReadOnlyList<string> sets, ParameterSetMetadata set)
    {
        var pipeline = new List<string>();
        if (set.ValueFromPipeline)
        {
            pipeline.Add("ByValue");
        }

        if (set.ValueFromPipelineByPropertyName)
        {
            pipeline.Add("ByPropertyName");
        }

        var setNames = sets.Count == 1 && sets[0] == ParameterAttribute.AllParameterSets ? "(All)" : string.Join(", ", sets);
        return $"""
            Type: {TypeName(parameter.ParameterType)}
            Parameter Sets: {setNames}
            Aliases:{(parameter.Aliases.Count == 0 ? string.Empty : " " + string.Join(", ", parameter.Aliases))}

            Required: {(set.IsMandatory ? "True" : "False")}
            Position: {(set.Position == int.MinValue ? "Named" : set.Position.ToString(System.Globalization.CultureInfo.InvariantCulture))}
            Default value: None
            Accept pipeline input: {(pipeline.Count == 0 ? "False" : $"True ({string.Join(", ", pipeline)})")}
            Accept wildcard characters: False

            """;
    }

    public static string TypeName(Type type) =>
        type.IsArray ? TypeName(type.GetElementType()!) + "[]" : Nullable.GetUnderlyingType(type) is { } underlying ? underlying.Name : type.Name;
}
