using System.Management.Automation;
using System.Text;

namespace IoTHubMqtt.Module.Tests.Harness;

/// <summary>Everything a script run produced, stream by stream.</summary>
public sealed class PowerShellResult
{
    public required IReadOnlyList<PSObject> Output { get; init; }

    public required IReadOnlyList<ErrorRecord> Errors { get; init; }

    public required IReadOnlyList<WarningRecord> Warnings { get; init; }

    public required IReadOnlyList<VerboseRecord> Verbose { get; init; }

    public required IReadOnlyList<DebugRecord> Debug { get; init; }

    public required IReadOnlyList<ProgressRecord> Progress { get; init; }

    public required IReadOnlyList<InformationRecord> Information { get; init; }

    /// <summary>A script-terminating error (throw, or an error with -ErrorAction Stop), if any.</summary>
    public RuntimeException? TerminatingError { get; init; }

    /// <summary>The errors, including the terminating one.</summary>
    public IEnumerable<ErrorRecord> AllErrors => TerminatingError is null ? Errors : Errors.Append(TerminatingError.ErrorRecord);

    public T Single<T>() => Assert.IsType<T>(Assert.Single(Output).BaseObject, exactMatch: false);

    /// <summary>Every piece of text a user could see: objects' strings and properties, every stream, error messages and details.</summary>
    public string AllText()
    {
        var text = new StringBuilder();
        foreach (var item in Output)
        {
            text.AppendLine(item?.ToString());
            if (item?.BaseObject is not string)
            {
                foreach (var property in item?.Properties ?? Enumerable.Empty<PSPropertyInfo>())
                {
                    try
                    {
                        text.Append(property.Name).Append('=').AppendLine(property.Value?.ToString());
                    }
                    catch (GetValueException)
                    {
                    }
                }
            }
        }

        foreach (var error in AllErrors)
        {
            text.AppendLine(error.ToString()).AppendLine(error.Exception.ToString()).AppendLine(error.ErrorDetails?.Message)
                .AppendLine(error.ErrorDetails?.RecommendedAction).AppendLine(error.TargetObject?.ToString()).AppendLine(error.CategoryInfo.ToString());
        }

        foreach (var line in Warnings.Select(w => w.Message).Concat(Verbose.Select(v => v.Message)).Concat(Debug.Select(d => d.Message)))
        {
            text.AppendLine(line);
        }

        foreach (var progress in Progress)
        {
            text.AppendLine(progress.Activity).AppendLine(progress.StatusDescription).AppendLine(progress.CurrentOperation);
        }

        foreach (var info in Information)
        {
            text.AppendLine(info.MessageData?.ToString());
        }

        return text.ToString();
    }
}
