using IoTHubMqtt.Module.Tests.Harness;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Module.Tests.Telemetry;

/// <summary>
/// The Event Hubs and Storage libraries load only when telemetry is read, in the module's private load context, and what
/// they bring that the module never uses (MSAL, Arrow) is not shipped: reading with blob checkpoints works without it.
/// </summary>
public sealed class TelemetryLoadingTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private static readonly string[] Heavy = ["Azure.Core", "Azure.Messaging.EventHubs", "Azure.Storage.Blobs", "Microsoft.Azure.Amqp"];
    private static readonly string[] Unused = ["Microsoft.Identity.Client", "Microsoft.Identity.Client.Extensions.Msal", "Microsoft.IdentityModel.Abstractions", "Apache.Arrow", "System.Security.Cryptography.ProtectedData"];

    [Fact]
    public void EventHubsAndStorageLibraries_LoadOnlyToReadTelemetry_InTheModulesContext_WithoutMsalOrArrow()
    {
        Assert.SkipWhen(azurite.Missing is not null, azurite.Missing ?? "");
        var container = "loading-" + Guid.NewGuid().ToString("N")[..8];
        var script = $$"""
            $heavy = '{{string.Join("','", Heavy)}}'
            function Loaded { @([AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -in $heavy } | ForEach-Object { "$($_.GetName().Name)@$([System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).Name)" }) -join ',' }
            Import-Module '{{TestPaths.ModuleManifest}}' -ErrorAction Stop
            'import: ' + (Loaded)
            $hub = Start-IoTHubEmulator
            $null = $hub | Connect-IoTHubService
            $d = New-IoTHubDevice -DeviceId load-1
            $c = Connect-IoTHub -ConnectionString $d.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
            $null = Send-IoTHubMessage -Connection $c -Body hello
            $null = Send-IoTHubCloudMessage -DeviceId load-1 -Message hi
            'device and service: ' + (Loaded)
            $read = Receive-IoTHubTelemetry -Count 1 -Timeout 60 -StorageConnectionString '{{azurite.ConnectionString}}' -Checkpoint {{container}}
            'read: ' + $read.Body
            'telemetry: ' + (Loaded)
            'files: ' + (@([IO.Directory]::GetFiles([IO.Path]::Combine([IO.Path]::GetDirectoryName((Get-Module IoTHubMqtt).Path), 'dependencies'), '*.dll') | ForEach-Object { [IO.Path]::GetFileNameWithoutExtension($_) }) -join ',')
            Disconnect-IoTHub -Connection $c
            $hub | Stop-IoTHubEmulator -Confirm:$false
            """;
        var result = HostProcess.Run(TimeSpan.FromMinutes(3), null, "-NoModule", "-Command", script);
        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        var lines = result.StdOut.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        string Line(string prefix) => lines.Single(l => l.StartsWith(prefix, StringComparison.Ordinal))[prefix.Length..];

        Assert.Equal("", Line("import: "));
        Assert.Equal("", Line("device and service: "));
        Assert.Equal("hello", Line("read: "));
        var loaded = Line("telemetry: ").Split(',');
        Assert.Contains(loaded, a => a.StartsWith("Azure.Messaging.EventHubs@", StringComparison.Ordinal));
        Assert.Contains(loaded, a => a.StartsWith("Azure.Storage.Blobs@", StringComparison.Ordinal));
        Assert.All(loaded, a => Assert.EndsWith("@IoTHubMqtt", a, StringComparison.Ordinal));

        var files = Line("files: ").Split(',');
        Assert.Contains("Azure.Messaging.EventHubs", files);
        Assert.Empty(files.Intersect(Unused)); // not shipped, and the read with blob checkpoints above did not miss them
    }
}
