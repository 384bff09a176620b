using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Fleet;

/// <summary>The fleet cmdlets at scale in a real PowerShell engine: bulk calls, the hub's throttles, import and export jobs.</summary>
public sealed class FleetScaleCmdletTests(SharedStorage storage) : IDisposable
{
    private readonly PowerShellSession ps = new();

    public void Dispose()
    {
        ps.Invoke("if ($hub) { $hub | Stop-IoTHubEmulator -Confirm:$false }");
        ps.Dispose();
    }

    private static string Fqid(string errorId, string command) => $"{errorId},IoTHubMqtt.Commands.Fleet.{command}Command";

    private void RequireStorage() => Assert.SkipWhen(storage.Azurite.Missing is not null, storage.Azurite.Missing ?? "");

    [Fact]
    public void NewDevice_250Rows_GoInBulkCalls_OneResultEachInOrder_AndAReRunIsUnchangedWithTheSameKeys()
    {
        var result = ps.Invoke("""
            $hub = Start-IoTHubEmulator -ServiceRequestsPerSecond 0
            $svc = $hub | Connect-IoTHubService
            $rows = 1..250 | ForEach-Object { [pscustomobject]@{ DeviceId = 'bulk-{0:D3}' -f $_; Tags = '{"batch":1}' } }
            $first = $rows | New-IoTHubDevice
            $again = $rows | New-IoTHubDevice
            ($first.DeviceId -join ',') -eq ($rows.DeviceId -join ',')
            (@($first.Action).Where({ $_ -ne 'Created' })).Count
            (@($again.Action).Where({ $_ -ne 'Unchanged' })).Count
            @(0..249 | Where-Object { $first[$_].PrimaryKey -ne $again[$_].PrimaryKey }).Count
            $first[0].Tags.batch
            """, timeout: TimeSpan.FromSeconds(90));

        Assert.Empty(result.AllErrors);
        Assert.Equal(["True", "0", "0", "0", "1"], result.Output.Select(o => o.ToString()));
        Assert.Contains(result.Progress, p => p.Activity == "New-IoTHubDevice" && p.StatusDescription.StartsWith("200 of 250 devices", StringComparison.Ordinal));
    }

    [Fact]
    public void NewDevice_AgainstS1_WaitsForTheHubsRetryAfter_SaysSoInProgressAndVerbose_AndCreatesEveryDevice()
    {
        var result = ps.Invoke("""
            $hub = Start-IoTHubEmulator -Tier S1 -Units 1
            $svc = $hub | Connect-IoTHubService
            $created = 1..110 | ForEach-Object { [pscustomobject]@{ DeviceId = 'paced-{0:D3}' -f $_ } } | New-IoTHubDevice -Verbose
            $created.Count
            $svc.ThrottledCount -ge 1
            """, timeout: TimeSpan.FromSeconds(90));

        Assert.Empty(result.AllErrors);
        // The first call takes the minute's 100 operations; the next 10 need 6 s of refill: the hub answers 429 first.
        Assert.Equal(["110", "True"], result.Output.Select(o => o.ToString()));
        Assert.Contains(result.Verbose, v => v.Message.Contains("429 ThrottlingException", StringComparison.Ordinal));
        Assert.Contains(result.Progress, p => p.CurrentOperation?.StartsWith("the hub throttles registry operations: waiting until", StringComparison.Ordinal) == true);
    }

    [Fact]
    public void RemoveDevice_InBulk_PassThru_SaysRemovedThenAbsent_AndAStaleETagIsPreconditionFailed()
    {
        var result = ps.Invoke("""
            $hub = Start-IoTHubEmulator
            $null = $hub | Connect-IoTHubService
            $devices = 1..120 | ForEach-Object { New-IoTHubDevice -DeviceId ('rm-{0:D3}' -f $_) }
            New-IoTHubDevice -DeviceId rm-001 -Status disabled -Force | Out-Null
            function Count($results) { $n = @{}; foreach ($r in $results) { $n[$r.Action] = 1 + [int]$n[$r.Action] }; ($n.Keys | ForEach-Object { "$_=$($n[$_])" }) -join ',' }
            Count ($devices | Remove-IoTHubDevice -Confirm:$false -PassThru)
            Count ($devices.DeviceId | Remove-IoTHubDevice -Force -PassThru)
            """, timeout: TimeSpan.FromSeconds(90));

        var counts = result.Output.Select(o => string.Join(",", o.ToString().Split(',').Order(StringComparer.Ordinal))).ToList();
        Assert.Equal(["Removed=119", "Absent=119,Removed=1"], counts);
        var error = Assert.Single(result.Errors);
        Assert.Equal(Fqid("PreconditionFailed", "RemoveIoTHubDevice"), error.FullyQualifiedErrorId);
        Assert.Equal("rm-001", error.TargetObject);
        Assert.Contains("412001", error.Exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ImportFromPipelineAndCsv_ThenExport_RoundTrip_WithPerDeviceErrorsAndBadRowsNamed()
    {
        RequireStorage();
        var csv = Path.Combine(Path.GetTempPath(), $"import-{Guid.NewGuid():N}.csv");
        File.WriteAllText(csv, "SerialNumber,Status,Tags\nimp-c1,disabled,\"{\"\"floor\"\":2}\"\nimp-c2,,\nbad id,,\nimp-c3,enabled,\nimp-c4,too,many,fields\n");
        try
        {
            var result = ps.Invoke($$"""
                $hub = Start-IoTHubEmulator
                $null = $hub | Connect-IoTHubService
                $storage = @{ StorageConnectionString = $env:AZURE_STORAGE_CONNECTION_STRING; Container = 'module-tests' }
                $piped = 1..300 | ForEach-Object { @{ DeviceId = 'imp-p{0:D3}' -f $_; Tags = @{ n = $_ } } } | Import-IoTHubDevice @storage
                $fromCsv = Import-IoTHubDevice -Path '{{csv}}' @storage -ErrorAction SilentlyContinue -ErrorVariable rowErrors
                $again = Import-IoTHubDevice -Path '{{csv}}' @storage -ErrorAction SilentlyContinue
                $missing = @{ DeviceId = 'imp-none' } | Import-IoTHubDevice @storage -Mode Delete -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable deviceErrors
                "$($piped.Status) $($piped.Devices) $($piped.Succeeded)"
                "$($fromCsv.Devices) $($fromCsv.Succeeded) $($again.Unchanged)"
                "$($missing.Failed) $($deviceErrors[0].FullyQualifiedErrorId) $($deviceErrors[0].TargetObject)"
                ($rowErrors | ForEach-Object { "$($_.TargetObject):$($_.FullyQualifiedErrorId.Split(',')[0])" }) -join ','
                $exported = Export-IoTHubDevice @storage
                $exported.Count
                $c1 = $exported | Where-Object DeviceId -eq 'imp-c1'
                "$($c1.Status) $($c1.Tags.floor) $($c1.Action) $([bool]$c1.ConnectionString)"
                $p7 = $exported | Where-Object DeviceId -eq 'imp-p007'
                $p7.Tags.n
                """, timeout: TimeSpan.FromMinutes(2));

            Assert.Equal(["completed 300 300", "3 3 3", $"1 {Fqid("DeviceNotFound", "ImportIoTHubDevice")} imp-none", "bad id:InvalidDeviceId,line 6:CsvRowMalformed", "303", "disabled 2 Exported True", "7"],
                result.Output.Select(o => o.ToString()));
            Assert.Empty(result.Errors);
            Assert.Contains(result.Progress, p => p.Activity == "Import-IoTHubDevice" && p.StatusDescription.StartsWith("Uploading 300 devices", StringComparison.Ordinal));
            Assert.DoesNotContain("AccountKey", result.AllText(), StringComparison.Ordinal);
            Assert.DoesNotContain("sig=", result.AllText(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(csv);
        }
    }

    [Fact]
    public void ImportAndExport_WithoutStorage_OrWithBoth_AreTerminatingErrors()
    {
        var result = ps.Invoke("""
            $hub = Start-IoTHubEmulator
            $null = $hub | Connect-IoTHubService
            try { @{ DeviceId = 'x' } | Import-IoTHubDevice -ErrorAction Stop } catch { $_.FullyQualifiedErrorId }
            try { Export-IoTHubDevice -StorageConnectionString 'UseDevelopmentStorage=true' -ContainerUri 'https://a.blob.core.windows.net/c?sig=x' -ErrorAction Stop } catch { $_.FullyQualifiedErrorId }
            try { Export-IoTHubDevice -ContainerUri 'https://a.blob.core.windows.net/c' -ErrorAction Stop } catch { $_.FullyQualifiedErrorId }
            """);

        Assert.Equal([Fqid("StorageMissing", "ImportIoTHubDevice"), Fqid("StorageConflict", "ExportIoTHubDevice"), Fqid("StorageSasMissing", "ExportIoTHubDevice")],
            result.Output.Select(o => o.ToString()));
    }

    [Fact]
    public void StartEmulator_Tier_ShowsOnTheObject_AndUnitsBeyondTheTierAreEmulatorUnitsInvalid()
    {
        var result = ps.Invoke("""
            $hub = Start-IoTHubEmulator -Tier S2 -Units 3
            "$($hub.HubTier) $($hub.Units)"
            $hub | Stop-IoTHubEmulator -Confirm:$false
            $hub = $null
            try { Start-IoTHubEmulator -Tier F1 -Units 2 -ErrorAction Stop } catch { $_.FullyQualifiedErrorId }
            try { Start-IoTHubEmulator -Tier S9 -ErrorAction Stop } catch { $_.FullyQualifiedErrorId.Split(',')[0] }
            """);

        Assert.Equal(["S2 3", "EmulatorUnitsInvalid,IoTHubMqtt.Commands.Emulator.StartIoTHubEmulatorCommand", "ParameterArgumentValidationError"], result.Output.Select(o => o.ToString()));
    }

    [Fact]
    public void BlobStorageClient_LoadsOnlyForAJob_InTheModulesOwnLoadContext()
    {
        RequireStorage();
        var script = HostProcess.WriteScript($$"""
            param([string] $Module)
            $ErrorActionPreference = 'Stop'
            function Loaded { @([AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -like 'Azure.*' } | ForEach-Object { "$($_.GetName().Name) in $([System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).Name)" }) }
            Import-Module $Module
            "import: $(Loaded)"
            $hub = Start-IoTHubEmulator
            $null = $hub | Connect-IoTHubService
            $null = 'a-1', 'a-2' | ForEach-Object { New-IoTHubDevice -DeviceId $_ }
            "registry: $(Loaded)"
            $null = Export-IoTHubDevice -StorageConnectionString $env:{{SharedStorage.Variable}} -Container isolation
            "job: $((Loaded) -join ';')"
            $hub | Stop-IoTHubEmulator
            """);
        try
        {
            var result = HostProcess.Run(TimeSpan.FromMinutes(2), new Dictionary<string, string> { [SharedStorage.Variable] = storage.Azurite.ConnectionString },
                "-NoModule", "-File", script, "-Module", TestPaths.ModuleManifest);

            Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
            var lines = result.StdOut.Split('\n').Select(l => l.Trim()).ToList();
            Assert.Contains("import:", lines);
            Assert.Contains("registry:", lines);
            var job = lines.Single(l => l.StartsWith("job: ", StringComparison.Ordinal));
            Assert.Contains("Azure.Storage.Blobs in IoTHubMqtt", job, StringComparison.Ordinal);
            Assert.DoesNotContain("in Default", job, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(script);
        }
    }
}
