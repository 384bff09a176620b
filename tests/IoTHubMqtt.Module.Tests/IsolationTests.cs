using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests;

/// <summary>
/// The module's dependencies load in its own AssemblyLoadContext, so it works beside a module that already loaded
/// another MQTTnet. Runs in a fresh host process: load MQTTnet 4.3.7 first, then import the module and use it.
/// </summary>
public sealed class IsolationTests
{
    [Fact]
    public void ImportAfterAnotherMqttnet_ModuleUsesItsOwnAndWorks()
    {
        var script = HostProcess.WriteScript("""
            param([string] $Conflicting, [string] $Module)
            $ErrorActionPreference = 'Stop'
            $other = [System.Reflection.Assembly]::LoadFrom($Conflicting)
            "other: $($other.GetName().Version) in $([System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($other).Name)"
            Import-Module $Module
            $hub = Start-IoTHubEmulator
            $conn = Connect-IoTHub -ConnectionString $hub.CreateDevice('iso-1').ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
            $sent = 'hello' | Send-IoTHubMessage -PassThru
            "sent: $($sent.Size)"
            foreach ($a in [AppDomain]::CurrentDomain.GetAssemblies()) {
                $name = $a.GetName()
                if ($name.Name -in 'MQTTnet', 'IoTHubMqtt.Core') {
                    "loaded: $($name.Name) $($name.Version) in $([System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($a).Name)"
                }
            }
            $conn | Disconnect-IoTHub
            $hub | Stop-IoTHubEmulator
            """);
        try
        {
            var result = HostProcess.Run(TimeSpan.FromMinutes(2), null, "-NoModule", "-File", script, "-Conflicting", TestPaths.ConflictingMqttnet, "-Module", TestPaths.ModuleManifest);

            Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
            Assert.Contains("other: 4.3.7.0 in Default", result.StdOut, StringComparison.Ordinal);
            Assert.Contains("sent: 5", result.StdOut, StringComparison.Ordinal);
            Assert.Contains("loaded: MQTTnet 4.3.7.0 in Default", result.StdOut, StringComparison.Ordinal);
            Assert.Contains("loaded: MQTTnet 5.", result.StdOut, StringComparison.Ordinal);
            Assert.Contains("loaded: IoTHubMqtt.Core 0.1.0.0 in IoTHubMqtt", result.StdOut, StringComparison.Ordinal);
            Assert.Matches(@"loaded: MQTTnet 5\.[0-9.]+ in IoTHubMqtt", result.StdOut);
        }
        finally
        {
            File.Delete(script);
        }
    }
}
