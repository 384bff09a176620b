using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Reflection;
using IoTHubMqtt.Host;
using Microsoft.PowerShell;

// iothubmqtt-host: pwsh itself (PowerShell's console host from Microsoft.PowerShell.SDK, with every built-in module)
// with the IoTHubMqtt module imported, so that a machine with only the .NET SDK runs scripts as pwsh does.
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

    (ex.IsHelp ? Console.Out : Console.Error).Write(HostOptions.Usage);
    return ex.IsHelp ? 0 : 64;
}

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

// The module's host has no profile of its own: scripts run the same on every machine, as with pwsh -NoProfile.
var pwshArguments = options.PwshArguments.Any(a => a.Equals("-NoProfile", StringComparison.OrdinalIgnoreCase) || a.Equals("-nop", StringComparison.OrdinalIgnoreCase))
    ? options.PwshArguments
    : options.PwshArguments.Prepend("-NoProfile");
return ConsoleShell.Start(state, bannerText: null, helpText: HostOptions.Usage, args: pwshArguments.ToArray());

namespace IoTHubMqtt.Host
{
    internal static class ModuleLocator
    {
        public static string? Find(string? explicitPath)
        {
            if (!string.IsNullOrEmpty(explicitPath))
            {
                var full = Path.GetFullPath(explicitPath);
                return File.Exists(full) ? full : null;
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
}
