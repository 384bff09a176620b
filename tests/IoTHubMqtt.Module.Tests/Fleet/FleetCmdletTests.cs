using System.Management.Automation;
using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Fleet;

/// <summary>The fleet (service) cmdlets in a real PowerShell engine against an emulator started in the same session.</summary>
public sealed class FleetCmdletTests : IDisposable
{
    private const string Start = "$hub = Start-IoTHubEmulator -ServiceRequestsPerSecond 0; $svc = $hub | Connect-IoTHubService; ";
    private readonly PowerShellSession ps = new();

    public void Dispose()
    {
        ps.Invoke("Get-Job | Remove-Job -Force; if ($hub) { $hub | Stop-IoTHubEmulator -Confirm:$false }");
        ps.Dispose();
    }

    private static string Fqid(string errorId, string command) => $"{errorId},IoTHubMqtt.Commands.Fleet.{command}Command";

    [Fact]
    public void NewDevice_BatchWithBadRows_CreatesTheGoodOnesInOrder_AndNamesEachBadRow()
    {
        var result = ps.Invoke(Start + """
            $rows = @(
                [pscustomobject]@{ DeviceId = 'pump-1'; Status = ''; PrimaryKey = '' }
                [pscustomobject]@{ DeviceId = ''; Status = ''; PrimaryKey = '' }
                [pscustomobject]@{ DeviceId = 'bad id'; Status = ''; PrimaryKey = '' }
                [pscustomobject]@{ DeviceId = 'pump-4'; Status = 'sleeping'; PrimaryKey = '' }
                [pscustomobject]@{ DeviceId = 'pump-5'; Status = ''; PrimaryKey = 'not base64!' }
                [pscustomobject]@{ DeviceId = 'pump-6'; Status = 'disabled'; PrimaryKey = '' }
            )
            $rows | New-IoTHubDevice
            """);

        Assert.Equal(["pump-1", "pump-6"], result.Output.Select(o => (string)o.Properties["DeviceId"].Value));
        Assert.Equal("disabled", result.Output[1].Properties["Status"].Value);
        Assert.Equal(
            [Fqid("DeviceIdMissing", "NewIoTHubDevice"), Fqid("InvalidDeviceId", "NewIoTHubDevice"), Fqid("InvalidDeviceStatus", "NewIoTHubDevice"), Fqid("KeyNotBase64", "NewIoTHubDevice")],
            result.Errors.Select(e => e.FullyQualifiedErrorId));
        Assert.Equal(["input 2", "bad id", "pump-4", "pump-5"], result.Errors.Select(e => e.TargetObject?.ToString()));
        Assert.Contains("Input 2", result.Errors[0].Exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NewDevice_ReRun_ReturnsExistingDevicesWithTheirKeys_AndForceUpdatesThem()
    {
        var result = ps.Invoke(Start + """
            $first = 'a-1', 'a-2' | ForEach-Object { [pscustomobject]@{ DeviceId = $_ } } | New-IoTHubDevice
            $again = 'a-1', 'a-2' | ForEach-Object { [pscustomobject]@{ DeviceId = $_ } } | New-IoTHubDevice
            $forced = [pscustomobject]@{ DeviceId = 'a-2'; Status = 'disabled' } | New-IoTHubDevice -Force
            $first.Action; $again.Action; $forced.Action; $forced.Status
            $first[0].PrimaryKey -eq $again[0].PrimaryKey
            $first[1].PrimaryKey -eq $forced.PrimaryKey
            """);

        Assert.Empty(result.AllErrors);
        Assert.Equal(["Created", "Created", "Unchanged", "Unchanged", "Updated", "disabled", "True", "True"], result.Output.Select(o => o.ToString()));
    }

    [Fact]
    public void NewDevice_Tags_FromHashtableOrJsonColumn_ReachTheTwin_AndBadJsonIsInvalidTags()
    {
        var result = ps.Invoke(Start + """
            (New-IoTHubDevice -DeviceId tag-1 -Tag @{ site = 'north'; floor = 2 }).Tags.floor
            $rows = [pscustomobject]@{ DeviceId = 'tag-2'; Tags = '{"site":"south"}' }, [pscustomobject]@{ DeviceId = 'tag-3'; Tags = 'site=west' }
            $rows | New-IoTHubDevice | ForEach-Object { "$($_.DeviceId) $($_.Tags.site)" }
            ([pscustomobject]@{ DeviceId = 'tag-2'; Tags = '{"site":"east"}' } | New-IoTHubDevice).Tags -eq $null
            ([pscustomobject]@{ DeviceId = 'tag-2'; Tags = '{"site":"east"}' } | New-IoTHubDevice -Force).Tags.site
            """);

        Assert.Equal(["2", "tag-2 south", "True", "east"], result.Output.Select(o => o.ToString()));
        var error = Assert.Single(result.Errors);
        Assert.Equal(Fqid("InvalidTags", "NewIoTHubDevice"), error.FullyQualifiedErrorId);
        Assert.Equal("tag-3", error.TargetObject);
    }

    [Fact]
    public void NewDevice_ManyInParallel_WritesInInputOrderWithProgress()
    {
        var result = ps.Invoke(Start + """
            $ids = 1..60 | ForEach-Object { 'sensor-{0:D3}' -f $_ }
            $devices = $ids | ForEach-Object { [pscustomobject]@{ DeviceId = $_ } } | New-IoTHubDevice -ThrottleLimit 4
            ($devices.DeviceId -join ',') -eq ($ids -join ',')
            (Get-IoTHubDevice).Count
            """);

        Assert.Empty(result.AllErrors);
        Assert.Equal(["True", "60"], result.Output.Select(o => o.ToString()));
        Assert.Contains(result.Progress, p => p.StatusDescription.StartsWith("60 of 60 devices", StringComparison.Ordinal));
    }

    [Fact]
    public void NewDevice_Output_CarriesAConnectionStringThatViewsAndToStringHide()
    {
        var result = ps.Invoke(Start + "$d = New-IoTHubDevice -DeviceId view-1; $d.ConnectionString; $d.PrimaryKey; $d.ToString()");
        Assert.Empty(result.AllErrors);
        var connectionString = (string)result.Output[0].BaseObject;
        var key = (string)result.Output[1].BaseObject;
        Assert.Equal($"HostName=localhost;DeviceId=view-1;SharedAccessKey={key}", connectionString);
        Assert.DoesNotContain(key, (string)result.Output[2].BaseObject, StringComparison.Ordinal);
        var table = ps.Render("$d");
        var list = ps.Render("$d | Format-List");
        Assert.Contains("view-1", table, StringComparison.Ordinal);
        Assert.DoesNotContain(key, table + list, StringComparison.Ordinal);
        Assert.DoesNotContain("SharedAccessKey", table + list, StringComparison.Ordinal);
    }

    [Fact]
    public void GetDevice_All_FollowsContinuation_AndAnUnknownIdIsANonTerminatingError()
    {
        var result = ps.Invoke(Start + """
            1..23 | ForEach-Object { New-IoTHubDevice -DeviceId ('g-{0:D2}' -f $_) } | Out-Null
            (Get-IoTHubDevice -PageSize 7).Count
            Get-IoTHubDevice -DeviceId g-01, nope, g-02 | ForEach-Object { $_.DeviceId + ':' + [bool]$_.PrimaryKey }
            """);

        Assert.Equal(["23", "g-01:True", "g-02:True"], result.Output.Select(o => o.ToString()));
        var error = Assert.Single(result.Errors);
        Assert.Equal(Fqid("DeviceNotFound", "GetIoTHubDevice"), error.FullyQualifiedErrorId);
        Assert.Equal("nope", error.TargetObject);
    }

    [Fact]
    public void RemoveDevice_WhatIfKeeps_StaleETagIsPreconditionFailed_PipelineWithForceRemovesAll()
    {
        var result = ps.Invoke(Start + """
            $d = 'r-1', 'r-2', 'r-3' | ForEach-Object { New-IoTHubDevice -DeviceId $_ }
            Remove-IoTHubDevice r-1 -WhatIf
            (Get-IoTHubDevice).Count
            [pscustomobject]@{ DeviceId = 'r-2'; Status = 'disabled' } | New-IoTHubDevice -Force | Out-Null
            $d[1] | Remove-IoTHubDevice -Confirm:$false
            Get-IoTHubDevice | Remove-IoTHubDevice -Force
            (Get-IoTHubDevice).Count
            """);

        Assert.Equal(["3", "0"], result.Output.Select(o => o.ToString()));
        var error = Assert.Single(result.Errors);
        Assert.Equal(Fqid("PreconditionFailed", "RemoveIoTHubDevice"), error.FullyQualifiedErrorId);
    }

    [Fact]
    public void InvokeMethod_AsJob_AnsweredByTheSameScript_ReturnsStatusAndPayload()
    {
        var result = ps.Invoke(Start + """
            $device = New-IoTHubDevice -DeviceId job-1
            Connect-IoTHub -ConnectionString $device.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath | Out-Null
            Register-IoTHubMethod -Name setInterval -ScriptBlock { @{ Status = 201; Payload = @{ interval = $_.Payload.seconds * 2 } } }
            $job = Invoke-IoTHubMethod -DeviceId job-1 -Name setInterval -Payload @{ seconds = 21 } -AsJob
            $call = Wait-IoTHubMethodCall -Timeout 15
            $answer = $job | Receive-Job -Wait
            $job.GetType().Name
            $answer.Status
            $answer.Payload.interval
            $answer.PayloadJson
            Disconnect-IoTHub
            """, timeout: TimeSpan.FromSeconds(60));

        Assert.Empty(result.AllErrors);
        Assert.Equal(["IoTHubMethodJob", "201", "42", "{\"interval\":42}"], result.Output.Select(o => o.ToString()));
    }

    [Fact]
    public void InvokeMethod_AsJob_ForAnOfflineDevice_FailsTheJobWithDeviceNotOnline()
    {
        var result = ps.Invoke(Start + """
            New-IoTHubDevice -DeviceId away-1 | Out-Null
            $job = Invoke-IoTHubMethod -DeviceId away-1 -Name ping -AsJob
            $job | Wait-Job | Out-Null
            $job.State
            $job | Receive-Job -ErrorAction SilentlyContinue -ErrorVariable failures
            $failures.Count
            $failures[0].FullyQualifiedErrorId
            """);

        Assert.Equal(["Failed", "1", "DeviceNotOnline"], result.Output.Select(o => o.ToString()));
    }

    [Fact]
    public void InvokeMethod_OfflineAndUnknownDevices_AreClearErrors_AndTheRestGoOn()
    {
        var result = ps.Invoke(Start + """
            New-IoTHubDevice -DeviceId sleepy | Out-Null
            'sleepy', 'ghost' | Invoke-IoTHubMethod -Name ping -Timeout 5
            """);

        Assert.Empty(result.Output);
        Assert.Equal([Fqid("DeviceNotOnline", "InvokeIoTHubMethod"), Fqid("DeviceNotFound", "InvokeIoTHubMethod")], result.Errors.Select(e => e.FullyQualifiedErrorId));
        Assert.Equal(["sleepy", "ghost"], result.Errors.Select(e => e.TargetObject));
        Assert.Contains("404", result.Errors[0].Exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SetDesiredProperty_ReachesTheDevice_AndAStaleETagIsPreconditionFailed()
    {
        var result = ps.Invoke(Start + """
            $device = New-IoTHubDevice -DeviceId twin-1
            Connect-IoTHub -ConnectionString $device.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath | Out-Null
            $first = Set-IoTHubDesiredProperty -DeviceId twin-1 -Property @{ interval = 5; mode = 'eco' }
            $second = Set-IoTHubDesiredProperty twin-1 @{ mode = $null } -ETag $first.ETag
            (Get-IoTHubTwin).Desired.interval
            $second.DesiredJson
            Set-IoTHubDesiredProperty twin-1 @{ interval = 9 } -ETag $first.ETag
            Disconnect-IoTHub
            """);

        Assert.Equal(["5", "{\"interval\":5}"], result.Output.Select(o => o.ToString()));
        Assert.Equal(Fqid("PreconditionFailed", "SetIoTHubDesiredProperty"), Assert.Single(result.Errors).FullyQualifiedErrorId);
    }

    [Fact]
    public void SendCloudMessage_DeviceReceivesBodyPropertiesAndMessageId()
    {
        var result = ps.Invoke(Start + """
            $device = New-IoTHubDevice -DeviceId c2d-1
            Connect-IoTHub -ConnectionString $device.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath | Out-Null
            $sent = Send-IoTHubCloudMessage -DeviceId c2d-1 -Message @{ led = 'on' } -Property @{ priority = 'high' } -MessageId m-42 -TimeToLive ([TimeSpan]::FromMinutes(5)) -Ack full
            $received = Receive-IoTHubMessage -Timeout 10
            $sent.MessageId; $sent.Ack
            $received.Body; $received.Properties['priority']; $received.MessageId
            Send-IoTHubCloudMessage -DeviceId nobody -Message 'x'
            Disconnect-IoTHub
            """);

        Assert.Equal(["m-42", "full", "{\"led\":\"on\"}", "high", "m-42"], result.Output.Select(o => o.ToString()));
        Assert.Equal(Fqid("DeviceNotFound", "SendIoTHubCloudMessage"), Assert.Single(result.Errors).FullyQualifiedErrorId);
    }

    [Fact]
    public void CloudMessageFeedback_ReportsSuccessForCompletedMessagesWithAck_AndTimesOutForUndelivered()
    {
        var result = ps.Invoke(Start + """
            $device = New-IoTHubDevice -DeviceId fb-1
            New-IoTHubDevice -DeviceId fb-2 | Out-Null
            Connect-IoTHub -ConnectionString $device.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath | Out-Null
            $acked = Send-IoTHubCloudMessage -DeviceId fb-1 -Message one -Ack full
            $silent = Send-IoTHubCloudMessage -DeviceId fb-1 -Message two
            $waiting = Send-IoTHubCloudMessage -DeviceId fb-2 -Message three -Ack full
            1..2 | ForEach-Object { Receive-IoTHubMessage -Timeout 10 } | Out-Null
            $feedback = $acked | Receive-IoTHubCloudMessageFeedback -Timeout 10
            "$($feedback.OriginalMessageId -eq $acked.MessageId) $($feedback.DeviceId) $($feedback.StatusCode)"
            @(Receive-IoTHubCloudMessageFeedback -Timeout 1).Count
            $waiting | Receive-IoTHubCloudMessageFeedback -Timeout 1
            Disconnect-IoTHub
            """);

        // The hub's feedback queue gives each record once: the second read finds nothing.
        Assert.Equal(["True fb-1 Success", "0"], result.Output.Select(o => o.ToString()));
        Assert.Equal(Fqid("CloudMessageFeedbackTimedOut", "ReceiveIoTHubCloudMessageFeedback"), Assert.Single(result.Errors).FullyQualifiedErrorId);
    }

    [Fact]
    public void ReceiveTelemetry_PropertiesThatDifferOnlyInCase_AreBothKept()
    {
        var result = ps.Invoke(Start + """
            $device = New-IoTHubDevice -DeviceId case-1
            Connect-IoTHub -ConnectionString $device.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath | Out-Null
            $p = [Collections.Generic.Dictionary[string, string]]::new([StringComparer]::Ordinal)
            $p['Kind'] = 'upper'
            $p['kind'] = 'lower'
            Send-IoTHubMessage -Body 'x' -Property $p | Out-Null
            $m = Receive-IoTHubTelemetry -DeviceId case-1 -Count 1 -Timeout 10
            "$($m.Properties['Kind']) $($m.Properties['kind']) $($m.Properties.Count)"
            Disconnect-IoTHub
            """);

        // MQTT property names are case-sensitive: a case-insensitive table cannot hold both, so the message keeps them exactly.
        Assert.Empty(result.AllErrors);
        Assert.Equal(["upper lower 2"], result.Output.Select(o => o.ToString()));
    }

    [Fact]
    public void ReceiveTelemetry_ReturnsMessagesWithPropertiesAndEnqueuedTime_AndCountTimeoutIsAnError()
    {
        var result = ps.Invoke(Start + """
            $device = New-IoTHubDevice -DeviceId tel-1
            New-IoTHubDevice -DeviceId tel-2 | Out-Null
            Connect-IoTHub -ConnectionString $device.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath | Out-Null
            1..3 | ForEach-Object { Send-IoTHubMessage -Body @{ n = $_ } -Property @{ kind = 'count' } }
            $messages = Receive-IoTHubTelemetry -DeviceId tel-1 -Count 3 -Timeout 10
            $messages.Body -join ';'
            $messages[0].Properties['kind']
            $messages[0].EnqueuedTime -is [DateTimeOffset]
            Receive-IoTHubTelemetry -DeviceId tel-2 -Count 1 -Timeout 1
            Disconnect-IoTHub
            """);

        Assert.Equal(["{\"n\":1};{\"n\":2};{\"n\":3}", "count", "True"], result.Output.Select(o => o.ToString()));
        Assert.Equal(Fqid("TelemetryWaitTimedOut", "ReceiveIoTHubTelemetry"), Assert.Single(result.Errors).FullyQualifiedErrorId);
    }

    [Fact]
    public void CloudMessagesAndTelemetry_WithAOneOffConnectionString_FindTheEmulatorsAmqpPort_AndAWrongKeyIsIoTHubUnauthorized()
    {
        var result = ps.Invoke(Start + """
            $device = New-IoTHubDevice -DeviceId amqp-1
            Connect-IoTHub -ConnectionString $device.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath | Out-Null
            $one = @{ ConnectionString = $hub.OwnerConnectionString; Port = $hub.HttpsPort; CaCertificatePath = $hub.CaCertificatePath }
            (Send-IoTHubCloudMessage -DeviceId amqp-1 -Message 'over amqp' -MessageId a-1 @one).MessageId
            (Receive-IoTHubMessage -Timeout 10).Body
            Send-IoTHubMessage -Body 'up' -Property @{ via = 'mqtt' } | Out-Null
            $up = Receive-IoTHubTelemetry -DeviceId amqp-1 -Count 1 -Timeout 15 @one
            "$($up.Body) $($up.Properties['via']) $($up.PartitionId -in '0','1','2','3')"
            Disconnect-IoTHub
            $wrong = @{ ConnectionString = 'HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=cGFzc3dvcmRwYXNzd29yZA=='; Port = $hub.HttpsPort; CaCertificatePath = $hub.CaCertificatePath }
            'amqp-1', 'amqp-1' | Send-IoTHubCloudMessage -Message 'x' @wrong
            Receive-IoTHubTelemetry -Timeout 1 @wrong
            Receive-IoTHubCloudMessageFeedback -Timeout 1 @wrong
            """, timeout: TimeSpan.FromSeconds(90));

        Assert.Equal(["a-1", "over amqp", "up mqtt True"], result.Output.Select(o => o.ToString()));
        Assert.Equal(
            [Fqid("IoTHubUnauthorized", "SendIoTHubCloudMessage"), Fqid("IoTHubUnauthorized", "ReceiveIoTHubTelemetry"), Fqid("IoTHubUnauthorized", "ReceiveIoTHubCloudMessageFeedback")],
            result.AllErrors.Select(e => e.FullyQualifiedErrorId));
        Assert.DoesNotContain(result.AllErrors, e => e.ToString().Contains("cGFzc3dvcmRwYXNzd29yZA", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ReceiveTelemetry_AmqpConnectionDroppedDuringTheRead_StillReturnsEveryMessageOnceInOrder()
    {
        var setup = ps.Invoke(Start + """
            $device = New-IoTHubDevice -DeviceId drop-1
            $device.ConnectionString; $hub.MqttTlsPort; $hub.CaCertificatePath
            """);
        Assert.Empty(setup.AllErrors);
        var vars = PowerShellSession.Vars(("cs", setup.Output[0].ToString()), ("port", setup.Output[1].BaseObject), ("ca", setup.Output[2].ToString()));
        var emulator = ps.GetVariable("hub") is PSObject wrapped ? wrapped.BaseObject : ps.GetVariable("hub")!;
        int Call(string method) => (int)emulator.GetType().GetMethod(method)!.Invoke(emulator, null)!; // the module's own load context: no cast

        using var device = new PowerShellSession();
        const string send = "Connect-IoTHub -ConnectionString $cs -Port $port -CaCertificatePath $ca | Out-Null; $range | ForEach-Object { Send-IoTHubMessage -Body @{ n = $_ } | Out-Null }";
        var first = device.Invoke(send, new Dictionary<string, object?>(vars) { ["range"] = Enumerable.Range(1, 5).ToArray() });
        Assert.Empty(first.AllErrors);

        // The read runs in the first session; meanwhile its AMQP connection is dropped and the device sends the rest.
        var reading = Task.Run(() => ps.Invoke("(Receive-IoTHubTelemetry -DeviceId drop-1 -Count 10 -Timeout 60).Body -join ';'", timeout: TimeSpan.FromSeconds(90)));
        var steady = 0;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (steady < 5 && DateTime.UtcNow < deadline && !reading.IsCompleted)
        {
            await Task.Delay(200, TestContext.Current.CancellationToken);
            steady = Call("get_AmqpConnectionCount") > 0 ? steady + 1 : 0;
        }

        var dropped = Call("DropAmqpConnections");
        var rest = device.Invoke("$range | ForEach-Object { Send-IoTHubMessage -Body @{ n = $_ } | Out-Null }; Disconnect-IoTHub", new Dictionary<string, object?> { ["range"] = Enumerable.Range(6, 5).ToArray() });
        var result = await reading;

        Assert.True(dropped >= 1, "the reader's AMQP connection was open when it was dropped");
        Assert.Empty(rest.AllErrors);
        Assert.Empty(result.AllErrors);
        Assert.Equal([string.Join(';', Enumerable.Range(1, 10).Select(n => $"{{\"n\":{n}}}"))], result.Output.Select(o => o.ToString()));
    }

    [Fact]
    public void ReceiveTelemetry_StartPositionEnd_SkipsWhatWasSentBefore()
    {
        var result = ps.Invoke(Start + """
            $device = New-IoTHubDevice -DeviceId late-1
            Connect-IoTHub -ConnectionString $device.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath | Out-Null
            Send-IoTHubMessage -Body 'old' | Out-Null
            [Threading.Thread]::Sleep(1100)
            (Receive-IoTHubTelemetry -DeviceId late-1 -Count 1 -Timeout 10 -StartPosition Start).Body
            Receive-IoTHubTelemetry -DeviceId late-1 -Count 1 -Timeout 2 -StartPosition End
            Disconnect-IoTHub
            """, timeout: TimeSpan.FromSeconds(60));

        Assert.Equal(["old"], result.Output.Select(o => o.ToString()));
        Assert.Equal(Fqid("TelemetryWaitTimedOut", "ReceiveIoTHubTelemetry"), Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void OneOffConnectionString_WorksWithPortAndCa_AndAWrongKeyIsIoTHubUnauthorized()
    {
        var result = ps.Invoke(Start + """
            $cs = $hub.OwnerConnectionString
            (New-IoTHubDevice -DeviceId one-off -ConnectionString $cs -Port $hub.HttpsPort -CaCertificatePath $hub.CaCertificatePath).DeviceId
            $wrong = 'HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=cGFzc3dvcmRwYXNzd29yZA=='
            Get-IoTHubDevice -DeviceId one-off -ConnectionString $wrong -Port $hub.HttpsPort -CaCertificatePath $hub.CaCertificatePath
            """);

        Assert.True(result.Output.Select(o => o.ToString()).SequenceEqual(["one-off"]), "output: " + string.Join(", ", result.Output) + "; errors: " + string.Join(" | ", result.AllErrors.Select(e => e.FullyQualifiedErrorId + ": " + e)));
        var error = Assert.Single(result.Errors);
        Assert.Equal(Fqid("IoTHubUnauthorized", "GetIoTHubDevice"), error.FullyQualifiedErrorId);
        Assert.DoesNotContain("cGFzc3dvcmRwYXNzd29yZA", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ServiceCmdlet_WithNoConnection_IsNoServiceConnection()
    {
        var result = ps.Invoke("Get-IoTHubDevice");
        Assert.Equal(Fqid("NoServiceConnection", "GetIoTHubDevice"), Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void NewDevice_UnderThrottling_RetriesAndCreatesEveryDevice()
    {
        var result = ps.Invoke("""
            $hub = Start-IoTHubEmulator -ServiceRequestsPerSecond 5
            $svc = $hub | Connect-IoTHubService
            $created = 1..15 | ForEach-Object { New-IoTHubDevice -DeviceId "th-$_" }
            $created.Count
            $svc.RetryCount -gt 0
            """, timeout: TimeSpan.FromSeconds(60));

        Assert.Empty(result.AllErrors);
        Assert.Equal(["15", "True"], result.Output.Select(o => o.ToString()));
    }

    [Fact]
    public void RegisterDevice_GroupKey_RegistersEachId_BadIdIsAnError_AndTheConnectionStringConnects()
    {
        var result = ps.Invoke(Start + """
            $groupKey = $hub.AddEnrollmentGroup('factory')
            $regs = 'node-1', 'Node-2', 'node-3' | Register-IoTHubDevice -IdScope $hub.IdScope -GroupKey $groupKey -ProvisioningHost localhost -Port $hub.DpsPort -CaCertificatePath $hub.CaCertificatePath
            $regs | ForEach-Object { "$($_.RegistrationId):$($_.Status):$($_.AssignedHub)" }
            $c = Connect-IoTHub -ConnectionString $regs[1].ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
            $c.DeviceId
            Disconnect-IoTHub
            Register-IoTHubDevice node-9 -IdScope $hub.IdScope -GroupKey 'cGFzc3dvcmRwYXNzd29yZA==' -ProvisioningHost localhost -Port $hub.DpsPort -CaCertificatePath $hub.CaCertificatePath
            """, timeout: TimeSpan.FromSeconds(60));

        Assert.Equal(["node-1:assigned:localhost", "node-3:assigned:localhost", "node-3"], result.Output.Select(o => o.ToString()));
        Assert.Equal([Fqid("InvalidRegistrationId", "RegisterIoTHubDevice"), Fqid("ProvisioningUnauthorized", "RegisterIoTHubDevice")], result.Errors.Select(e => e.FullyQualifiedErrorId));
        Assert.DoesNotContain("SharedAccessKey", ps.Render("$regs") + ps.Render("$regs | Format-List"), StringComparison.Ordinal);
    }
}
