using System.Management.Automation;
using System.Text.RegularExpressions;
using IoTHubMqtt.HelpBuilder;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Help;

/// <summary>
/// The rules every cmdlet follows, checked on the compiled cmdlets in a real engine and on their help, so a new cmdlet
/// cannot quietly break them: -WhatIf/-Confirm on whatever changes state, high confirm impact for what destroys, and
/// the ErrorIds a cmdlet raises listed in its help.
/// </summary>
public sealed partial class CmdletConventionTests : IDisposable
{
    /// <summary>Verbs that change something; a cmdlet with one of them supports ShouldProcess unless exempt below.</summary>
    private static readonly HashSet<string> ChangingVerbs = new(StringComparer.Ordinal)
    {
        "New", "Remove", "Set", "Update", "Clear", "Install", "Send", "Start", "Stop", "Register", "Unregister", "Publish",
        "Disconnect", "Reset", "Restart", "Write", "Add", "Rename", "Move", "Copy", "Enable", "Disable",

        // Invoke-IoTHubMethod runs a direct method, which acts on the device (reboot, update, factory reset).
        "Invoke",
    };

    /// <summary>Exempt, with the reason: they compute a value in memory and change nothing anywhere.</summary>
    private static readonly HashSet<string> ComputeOnly = new(StringComparer.Ordinal) { "New-IoTHubSasToken", "New-IoTHubDeviceKey" };

    private static readonly HashSet<string> DestroyingVerbs = new(StringComparer.Ordinal) { "Remove", "Clear" };

    private readonly PowerShellSession ps = new();

    public void Dispose() => ps.Dispose();

    public static TheoryData<string> Cmdlets() => HelpCoverageTests.Cmdlets();

    private CmdletInfo Info(string cmdlet) => (CmdletInfo)ps.Invoke($"Get-Command {cmdlet}").Output.Single().BaseObject;

    [Theory]
    [MemberData(nameof(Cmdlets))]
    public void StateChangingCmdlets_SupportWhatIfAndConfirm(string cmdlet)
    {
        var info = Info(cmdlet);
        var attribute = (CmdletAttribute)info.ImplementingType.GetCustomAttributes(typeof(CmdletAttribute), false).Single();
        if (ChangingVerbs.Contains(info.Verb) && !ComputeOnly.Contains(cmdlet))
        {
            Assert.True(attribute.SupportsShouldProcess, $"{cmdlet} changes state: it must support -WhatIf and -Confirm (SupportsShouldProcess).");
            Assert.Contains("WhatIf", info.Parameters.Keys);
            Assert.Contains("Confirm", info.Parameters.Keys);
        }

        if (DestroyingVerbs.Contains(info.Verb))
        {
            Assert.Equal(ConfirmImpact.High, attribute.ConfirmImpact);
        }
    }

    [Fact]
    public void WhatIf_StartsNoEmulator_AndCallsNoMethod()
    {
        var result = ps.Invoke("$none = Start-IoTHubEmulator -WhatIf; $null -eq $none");
        Assert.Empty(result.AllErrors);
        Assert.Equal(true, Assert.Single(result.Output).BaseObject);

        // A real call to a device that does not exist is DeviceNotFound; with -WhatIf nothing is sent.
        result = ps.Invoke("$hub = Start-IoTHubEmulator; $null = $hub | Connect-IoTHubService; 'nobody', 'nobody-else' | Invoke-IoTHubMethod -Name reboot -WhatIf; $hub | Stop-IoTHubEmulator -Confirm:$false");
        Assert.Empty(result.AllErrors);
        Assert.Empty(result.Output);
    }

    [Fact]
    public void ImportModule_LoadsNoDependency_UntilACmdletNeedsIt()
    {
        // A new process, as a user's shell: a public constructor or base type that names a core type would load the
        // core (and what it drags in) during Import-Module, which must stay cheap.
        var script = $$"""
            $before = @([AppDomain]::CurrentDomain.GetAssemblies().GetName().Name)
            Import-Module '{{TestPaths.ModuleManifest}}' -ErrorAction Stop
            'import: ' + (@([AppDomain]::CurrentDomain.GetAssemblies().GetName().Name).Where({ $_ -notin $before -and $_ -ne 'Microsoft.CSharp' }) -join ',')
            $null = ConvertFrom-IoTHubConnectionString 'HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAA=='
            'first command: ' + (@([AppDomain]::CurrentDomain.GetAssemblies().GetName().Name) -contains 'IoTHubMqtt.Core')
            """;
        var result = HostProcess.Run(TimeSpan.FromMinutes(2), null, "-NoModule", "-Command", script);

        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        Assert.Contains("import: IoTHubMqtt", result.StdOut.Split('\n').Select(l => l.Trim()));
        Assert.Contains("first command: True", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void LongOperations_WriteProgress()
    {
        var start = ps.Invoke("$hub = Start-IoTHubEmulator; $null = $hub | Connect-IoTHubService; $null = 'p-1', 'p-2', 'p-3' | ForEach-Object { [pscustomobject]@{ DeviceId = $_ } } | New-IoTHubDevice");
        Assert.Empty(start.AllErrors);
        Assert.Contains(start.Progress, p => p.Activity == "Start-IoTHubEmulator" && p.StatusDescription.StartsWith("Starting the IoT Hub emulator", StringComparison.Ordinal));

        // Offline devices answer DeviceNotOnline; the calls still report how many of them are done.
        var calls = ps.Invoke("'p-1', 'p-2', 'p-3' | Invoke-IoTHubMethod -Name reboot; $hub | Stop-IoTHubEmulator -Confirm:$false");
        Assert.Equal(3, calls.Errors.Count);
        Assert.Contains(calls.Progress, p => p.Activity == "Invoke-IoTHubMethod" && p.StatusDescription.StartsWith("3 of 3 devices answered", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Cmdlets))]
    public void Help_ListsTheErrorIdsTheCmdletRaises(string cmdlet)
    {
        var notes = MarkdownReader.Read(Path.Combine(TestPaths.RepoRoot, "module", "help", cmdlet + ".md")).Notes;
        var at = notes.IndexOf("ErrorIds:", StringComparison.Ordinal);
        Assert.True(at >= 0, $"{cmdlet}: the NOTES of its help have no 'ErrorIds:' list.");
        var documented = BacktickedRegex().Matches(notes[at..]).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);

        // Every ErrorId the cmdlet's own code (its class and its base classes) raises is documented ...
        var raised = SourceChain(Info(cmdlet).ImplementingType)
            .SelectMany(source => RaisedRegex().Matches(File.ReadAllText(source)).Select(m => m.Groups[1].Value))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        Assert.All(raised, id => Assert.True(documented.Contains(id), $"{cmdlet} raises {id}, which its help NOTES do not list."));

        // ... and every ErrorId the help names is in the ErrorIds table: none invented, none left behind by a rename.
        var table = ErrorIdHelpTests.Catalog().Keys.ToHashSet(StringComparer.Ordinal);
        Assert.All(documented, id => Assert.True(table.Contains(id), $"{cmdlet}'s help names ErrorId {id}, which is not in the ErrorIds table."));
    }

    /// <summary>The source files of the cmdlet class and its base classes, found by class name under src/IoTHubMqtt.</summary>
    private static List<string> SourceChain(Type type)
    {
        var sources = Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "src", "IoTHubMqtt"), "*.cs", SearchOption.AllDirectories);
        var chain = new List<string>();
        for (var t = type; t is not null && t.Assembly == type.Assembly; t = t.BaseType)
        {
            var file = sources.SingleOrDefault(f => Path.GetFileNameWithoutExtension(f) == t.Name);
            Assert.True(file is not null || t != type, $"The source of {t.Name} was not found.");
            if (file is not null)
            {
                chain.Add(file);
            }
        }

        return chain;
    }

    /// <summary>An ErrorId the code names: <c>ErrorIds.NoConnection</c>.</summary>
    [GeneratedRegex(@"\bErrorIds\.([A-Za-z0-9]+)\b")]
    private static partial Regex RaisedRegex();

    [GeneratedRegex(@"`([A-Z][A-Za-z0-9]+)`")]
    private static partial Regex BacktickedRegex();
}
