using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Reflection;
using System.Text;
using IoTHubMqtt.Host;

HostOptions options;
try
{
    options = HostOptions.Parse(args);
}
catch (HostUsageException ex)
{
    if (!ex.IsHelp)
    {
        Console.Error.WriteLine(ex.Message);
    }

    Console.Error.WriteLine(HostOptions.Usage);
    return ex.IsHelp ? 0 : 64;
}

var host = new ConsoleHost();
var state = InitialSessionState.CreateDefault2();
if (!options.NoModule)
{
    var module = ModuleLocator.Find(options.ModulePath);
    if (module is null)
    {
        Console.Error.WriteLine("The IoTHubMqtt module was not found: pass -Module <path to IoTHubMqtt.psd1>, set IOTHUBMQTT_MODULE, or build it with 'dotnet build'.");
        return 66;
    }

    state.ImportPSModule(module);
}

using var runspace = RunspaceFactory.CreateRunspace(host, state);
runspace.Open();
if (options.Verbose)
{
    runspace.SessionStateProxy.SetVariable("VerbosePreference", ActionPreference.Continue);
}

using var shell = PowerShell.Create();
shell.Runspace = runspace;
var script = options.File is not null ? ScriptCommand.ForFile(options.File, options.ScriptArguments) : options.Command!;
shell.AddScript(script);
shell.Commands.Commands[0].MergeMyResults(PipelineResultTypes.Error, PipelineResultTypes.Output);
shell.AddCommand("Out-Default");

Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    shell.BeginStop(null, null);
};

try
{
    shell.Invoke();
}
catch (PipelineStoppedException)
{
    Console.Error.WriteLine("Stopped.");
    return 130;
}
catch (RuntimeException ex)
{
    WriteTerminatingError(ex.ErrorRecord);
    return 1;
}

if (host.ShouldExit)
{
    return host.ExitCode;
}

// A script that ended with 'exit N' (or a native command) sets $LASTEXITCODE, as with pwsh -File.
var last = runspace.SessionStateProxy.GetVariable("LASTEXITCODE");
return last is int code ? code : shell.HadErrors && options.File is null ? 1 : 0;

static void WriteTerminatingError(ErrorRecord record)
{
    var text = new StringBuilder();
    if (record.InvocationInfo?.MyCommand?.Name is { Length: > 0 } command)
    {
        text.Append(command).Append(": ");
    }

    text.Append(record.ErrorDetails?.Message ?? record.Exception.Message);
    if (record.ErrorDetails?.RecommendedAction is { Length: > 0 } action)
    {
        text.AppendLine().Append("Recommended action: ").Append(action);
    }

    text.AppendLine().Append("FullyQualifiedErrorId: ").Append(record.FullyQualifiedErrorId);
    Console.Error.WriteLine(text.ToString());
}

namespace IoTHubMqtt.Host
{
    internal static class ModuleLocator
    {
        public static string? Find(string? explicitPath)
        {
            if (!string.IsNullOrEmpty(explicitPath))
            {
                return Path.GetFullPath(explicitPath);
            }

            if (Environment.GetEnvironmentVariable("IOTHUBMQTT_MODULE") is { Length: > 0 } fromEnvironment)
            {
                return Path.GetFullPath(fromEnvironment);
            }

            var built = typeof(ModuleLocator).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "DefaultModuleManifest")?.Value;
            if (built is not null && File.Exists(built))
            {
                return built;
            }

            // Installed: let Import-Module find it by name on PSModulePath.
            return "IoTHubMqtt";
        }
    }

    internal static class ScriptCommand
    {
        /// <summary>Builds <c>&amp; 'file' args…</c> where <c>-Name</c> arguments stay parameter names and the rest are quoted literals, like pwsh -File.</summary>
        public static string ForFile(string file, IReadOnlyList<string> arguments)
        {
            var text = new StringBuilder("& ").Append(Quote(Path.GetFullPath(file)));
            foreach (var argument in arguments)
            {
                text.Append(' ');
                if (IsParameterName(argument))
                {
                    text.Append(argument);
                }
                else
                {
                    text.Append(Quote(argument));
                }
            }

            return text.ToString();
        }

        private static bool IsParameterName(string argument) =>
            argument.Length > 1 && argument[0] == '-' && (char.IsLetter(argument[1]) || argument[1] == '_') &&
            argument.Skip(1).All(c => char.IsLetterOrDigit(c) || c is '_' or '-' or ':') &&
            (argument.IndexOf(':', StringComparison.Ordinal) is < 0 || argument.EndsWith(':'));

        private static string Quote(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
    }
}
