using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using IoTHubMqtt.Core.Esp32;

namespace IoTHubMqtt.Completion;

/// <summary>
/// Tab completion for -Port of the ESP32 cmdlets: boards found by USB id, the serial ports present, paths (a socat pty
/// link, /dev/pts/N) when the text is a path, and the socket:// and rfc2217:// forms. Never throws.
/// </summary>
public sealed class PortCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        try
        {
            return Complete(CompletionText.Unquote(wordToComplete));
        }
#pragma warning disable CA1031 // A completer must never surface an error while the user types.
        catch (Exception)
#pragma warning restore CA1031
        {
            return [];
        }
    }

    private static List<CompletionResult> Complete(string prefix) =>
        SerialPortSuggestions.For(prefix)
            .Select(s => new CompletionResult(CompletionText.Quote(s.Value), s.Value, s.IsDirectory ? CompletionResultType.ProviderContainer : CompletionResultType.ParameterValue, s.Description))
            .ToList();
}
