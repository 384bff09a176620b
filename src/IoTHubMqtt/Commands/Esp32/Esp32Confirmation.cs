using System.Management.Automation;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>
/// Confirmation of changes to a board. A change that wipes the whole flash is high impact: it is confirmed unless -Force,
/// -Confirm:$false or $ConfirmPreference = 'None' says not to ask; -WhatIf only describes it. Where the host cannot ask
/// (pwsh -NonInteractive, a CI job whose input is not a terminal), the cmdlet stops with Esp32ConfirmationRequired before
/// the port is opened, instead of the host's own error.
/// </summary>
internal static class Esp32Confirmation
{
    /// <summary>
    /// True when <paramref name="action"/> on <paramref name="target"/> may go ahead. <paramref name="highImpactQuery"/>
    /// asks once more, for a high-impact part of a cmdlet whose own ConfirmImpact is lower, where ShouldProcess did not
    /// ask already. <paramref name="force"/> skips every question (but not -WhatIf, nor an explicit -Confirm).
    /// </summary>
    public static bool Approve(PSCmdlet cmdlet, string target, string action, bool force, string? highImpactQuery = null)
    {
        var bound = cmdlet.MyInvocation.BoundParameters;
        var confirmAsked = bound.ContainsKey("Confirm");
        if (force && !confirmAsked && !WhatIf(cmdlet))
        {
            cmdlet.WriteVerbose($"{action} on {target}: confirmed by -Force.");
            return true;
        }

        try
        {
            if (!cmdlet.ShouldProcess(target, action))
            {
                return false;
            }

            // ShouldProcess asked already where $ConfirmPreference is at the cmdlet's impact or below, or with -Confirm.
            return highImpactQuery is null || force || confirmAsked || Preference(cmdlet) != ConfirmImpact.High
                || cmdlet.ShouldContinue(highImpactQuery, $"Confirm: {action}");
        }
        catch (Exception ex) when (ex is not PipelineStoppedException and not OperationCanceledException)
        {
            // The host failed to ask: pwsh -NonInteractive (PSInvalidOperationException), a host without a user interface
            // (HostException, NotSupportedException), the console host reading the answer from an input that has ended.
            throw new IoTHubMqttException(ErrorIds.Esp32ConfirmationRequired,
                $"{action} on {target} must be confirmed, and this PowerShell cannot ask (it runs without an interactive console).",
                "Add -Force (or -Confirm:$false) to confirm it in a script or CI job; -WhatIf shows what would be done.", target, ex);
        }
    }

    private static bool WhatIf(PSCmdlet cmdlet) =>
        cmdlet.MyInvocation.BoundParameters.TryGetValue("WhatIf", out var value)
            ? value is SwitchParameter { IsPresent: true } || value is true
            : LanguagePrimitives.IsTrue(cmdlet.GetVariableValue("WhatIfPreference"));

    private static ConfirmImpact Preference(PSCmdlet cmdlet) =>
        LanguagePrimitives.TryConvertTo<ConfirmImpact>(cmdlet.GetVariableValue("ConfirmPreference"), out var preference) ? preference : ConfirmImpact.High;
}
