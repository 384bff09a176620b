#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Fleet (service) cmdlets against the local emulator. ./build.ps1 -Task Test runs this with the built module.

BeforeAll {
    $manifest = if ($env:IOTHUBMQTT_MODULE) { $env:IOTHUBMQTT_MODULE } else {
        Get-ChildItem (Join-Path $PSScriptRoot '../out/IoTHubMqtt/*/IoTHubMqtt.psd1') | Select-Object -First 1 -ExpandProperty FullName
    }
    Import-Module $manifest -Force
    $script:hub = Start-IoTHubEmulator -ServiceRequestsPerSecond 0
    $script:service = $hub | Connect-IoTHubService

    function script:New-TestId([string] $Prefix) { "$Prefix-$([guid]::NewGuid().ToString('N').Substring(0, 8))" }

    function script:Connect-TestDevice([string] $DeviceId) {
        $device = Get-IoTHubDevice -DeviceId $DeviceId
        Connect-IoTHub -ConnectionString $device.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
    }
}

AfterAll {
    Disconnect-IoTHub -ErrorAction SilentlyContinue
    $hub | Stop-IoTHubEmulator
}

Describe 'Connect-IoTHubService' -Tags 'CI' {
    It 'connects to the emulator and shows no secret' {
        $service.HostName | Should -Be $hub.HostName
        $service.IsEmulator | Should -BeTrue
        ($service | Format-List * | Out-String) | Should -Not -Match ([regex]::Escape(($hub.OwnerConnectionString -split 'SharedAccessKey=')[1]))
    }

    It 'refuses a device connection string with ServiceConnectionStringRequired' {
        $cs = $hub.CreateDevice((New-TestId 'svc')).ConnectionString
        { Connect-IoTHubService -ConnectionString $cs -ErrorAction Stop } |
            Should -Throw -ErrorId 'ServiceConnectionStringRequired,IoTHubMqtt.Commands.Fleet.ConnectIoTHubServiceCommand'
    }
}

Describe 'Device registry' -Tags 'CI' {
    It 'creates devices from CSV rows, with a connection string on each' {
        $prefix = New-TestId 'csv'
        $csv = @("DeviceId,Status", "$prefix-1,enabled", "$prefix-2,disabled", "$prefix-3,") | ConvertFrom-Csv
        $created = $csv | New-IoTHubDevice -ThrottleLimit 4
        $created.Count | Should -Be 3
        $created.DeviceId | Should -Be @("$prefix-1", "$prefix-2", "$prefix-3")
        $created[1].Status | Should -Be 'disabled'
        $created | ForEach-Object { $_.ConnectionString | Should -Match "DeviceId=$($_.DeviceId);" }
        $created.Action | Should -Be @('Created', 'Created', 'Created')
    }

    It 'creates devices from bare device ids in the pipeline' {
        $prefix = New-TestId 'ids'
        $created = "$prefix-a", "$prefix-b" | New-IoTHubDevice
        $created.DeviceId | Should -Be @("$prefix-a", "$prefix-b")
        $created.Action | Should -Be @('Created', 'Created')
        ("$prefix-a", "$prefix-b" | Remove-IoTHubDevice -PassThru -Confirm:$false).DeviceId | Should -Be @("$prefix-a", "$prefix-b")
    }

    It 'is idempotent: a re-run returns the existing devices with their keys, -Force updates them' {
        $id = New-TestId 'again'
        $first = New-IoTHubDevice -DeviceId $id
        $again = New-IoTHubDevice -DeviceId $id
        $again.Action | Should -Be 'Unchanged'
        $again.PrimaryKey | Should -Be $first.PrimaryKey
        $forced = [pscustomobject]@{ DeviceId = $id; Status = 'disabled' } | New-IoTHubDevice -Force
        $forced.Action | Should -Be 'Updated'
        $forced.Status | Should -Be 'disabled'
    }

    It 'names each bad row and goes on with the others' {
        $good = New-TestId 'good'
        $rows = @(
            [pscustomobject]@{ DeviceId = 'bad id'; Status = '' }
            [pscustomobject]@{ DeviceId = $good; Status = '' }
            [pscustomobject]@{ DeviceId = (New-TestId 'sleepy'); Status = 'sleeping' }
        )
        $created = $rows | New-IoTHubDevice -ErrorVariable failures -ErrorAction SilentlyContinue
        $created.DeviceId | Should -Be $good
        $failures.Count | Should -Be 2
        $failures[0].FullyQualifiedErrorId | Should -Be 'InvalidDeviceId,IoTHubMqtt.Commands.Fleet.NewIoTHubDeviceCommand'
        $failures[1].FullyQualifiedErrorId | Should -Be 'InvalidDeviceStatus,IoTHubMqtt.Commands.Fleet.NewIoTHubDeviceCommand'
    }

    It 'gets one device or all of them, and an unknown id is DeviceNotFound' {
        $id = New-TestId 'get'
        New-IoTHubDevice -DeviceId $id | Out-Null
        (Get-IoTHubDevice -DeviceId $id).DeviceId | Should -Be $id
        (Get-IoTHubDevice -PageSize 2).DeviceId | Should -Contain $id
        { Get-IoTHubDevice -DeviceId (New-TestId 'nobody') -ErrorAction Stop } |
            Should -Throw -ErrorId 'DeviceNotFound,IoTHubMqtt.Commands.Fleet.GetIoTHubDeviceCommand'
    }

    It 'removes a device, and a stale ETag is PreconditionFailed' {
        $id = New-TestId 'rm'
        $device = New-IoTHubDevice -DeviceId $id
        [pscustomobject]@{ DeviceId = $id; Status = 'disabled' } | New-IoTHubDevice -Force | Out-Null
        { Remove-IoTHubDevice -DeviceId $id -ETag $device.ETag -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'PreconditionFailed,IoTHubMqtt.Commands.Fleet.RemoveIoTHubDeviceCommand'
        Remove-IoTHubDevice -DeviceId $id -Force
        { Get-IoTHubDevice -DeviceId $id -ErrorAction Stop } | Should -Throw -ErrorId 'DeviceNotFound,IoTHubMqtt.Commands.Fleet.GetIoTHubDeviceCommand'
    }

    It 'refuses a wrong policy key with IoTHubUnauthorized' {
        $wrong = "HostName=$($hub.HostName);SharedAccessKeyName=iothubowner;SharedAccessKey=$([Convert]::ToBase64String([byte[]]::new(32)))"
        { Get-IoTHubDevice -ConnectionString $wrong -Port $hub.HttpsPort -CaCertificatePath $hub.CaCertificatePath -ErrorAction Stop } |
            Should -Throw -ErrorId 'IoTHubUnauthorized,IoTHubMqtt.Commands.Fleet.GetIoTHubDeviceCommand'
    }
}

Describe 'Register-IoTHubDevice' -Tags 'CI' {
    It 'registers devices of a group enrollment and returns connection strings that connect' {
        $groupKey = $hub.AddEnrollmentGroup((New-TestId 'group'))
        $ids = 1..3 | ForEach-Object { New-TestId 'dps' }
        $registrations = $ids | Register-IoTHubDevice -IdScope $hub.IdScope -GroupKey $groupKey -ProvisioningHost localhost -Port $hub.DpsPort -CaCertificatePath $hub.CaCertificatePath
        $registrations.Status | Should -Be @('assigned', 'assigned', 'assigned')
        $registrations.AssignedHub | Should -Be @($hub.HostName, $hub.HostName, $hub.HostName)
        $connection = Connect-IoTHub -ConnectionString $registrations[0].ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault
        $connection.DeviceId | Should -Be $registrations[0].DeviceId
        $connection | Disconnect-IoTHub
    }

    It 'reports a wrong group key as ProvisioningUnauthorized' {
        { Register-IoTHubDevice (New-TestId 'dps') -IdScope $hub.IdScope -GroupKey ([Convert]::ToBase64String([byte[]]::new(32))) -ProvisioningHost localhost -Port $hub.DpsPort -CaCertificatePath $hub.CaCertificatePath -ErrorAction Stop } |
            Should -Throw -ErrorId 'ProvisioningUnauthorized,IoTHubMqtt.Commands.Fleet.RegisterIoTHubDeviceCommand'
    }
}

Describe 'Methods and desired properties' -Tags 'CI' {
    BeforeAll {
        $script:deviceId = New-TestId 'ops'
        New-IoTHubDevice -DeviceId $deviceId | Out-Null
        $script:conn = Connect-TestDevice $deviceId
    }

    AfterAll { $conn | Disconnect-IoTHub }

    It 'calls a direct method and returns status and payload' {
        Register-IoTHubMethod -Name double -ScriptBlock { @{ value = $_.Payload.value * 2 } }
        $job = Invoke-IoTHubMethod -DeviceId $deviceId -Name double -Payload @{ value = 21 } -Timeout 30 -AsJob
        (Wait-IoTHubMethodCall -Timeout 30).Status | Should -Be 200
        # Wait-Job first: Receive-Job -Wait -AutoRemoveJob on a job that ends while Receive-Job is starting removes it twice
        # and reports ReceiveJobAutoRemovalError (PowerShell's Receive-Job, any job type); see README, Known limits.
        $result = $job | Wait-Job -Timeout 30 | Receive-Job -Wait -AutoRemoveJob
        $result.Status | Should -Be 200
        $result.Payload.value | Should -Be 42
        Get-Job -Id $job.Id -ErrorAction SilentlyContinue | Should -BeNullOrEmpty -Because 'Receive-Job -AutoRemoveJob removes the job'
    }

    It 'reports a method call to an unknown device as DeviceNotFound' {
        { Invoke-IoTHubMethod -DeviceId (New-TestId 'nobody') -Name ping -Timeout 5 -ErrorAction Stop } |
            Should -Throw -ErrorId 'DeviceNotFound,IoTHubMqtt.Commands.Fleet.InvokeIoTHubMethodCommand'
    }

    It 'patches desired properties, and a stale ETag is PreconditionFailed' {
        $first = Set-IoTHubDesiredProperty -DeviceId $deviceId -Property @{ interval = 5 }
        (Wait-IoTHubDesiredProperty -Name interval -Timeout 15).Patch.interval | Should -Be 5
        Set-IoTHubDesiredProperty -DeviceId $deviceId -Property @{ interval = 6 } | Out-Null
        { Set-IoTHubDesiredProperty -DeviceId $deviceId -Property @{ interval = 9 } -ETag $first.ETag -ErrorAction Stop } |
            Should -Throw -ErrorId 'PreconditionFailed,IoTHubMqtt.Commands.Fleet.SetIoTHubDesiredPropertyCommand'
    }
}

Describe 'Cloud-to-device messages, feedback and telemetry over AMQP' -Tags 'CI' {
    BeforeAll {
        $script:deviceId = New-TestId 'amqp'
        New-IoTHubDevice -DeviceId $deviceId | Out-Null
        $script:conn = Connect-TestDevice $deviceId
    }

    AfterAll { $conn | Disconnect-IoTHub }

    It 'sends a message with properties and an expiry that the device receives' {
        $receipt = Send-IoTHubCloudMessage -DeviceId $deviceId -Message @{ led = 'on' } -Property @{ priority = 'high' } -MessageId 'pester-1' -TimeToLive ([TimeSpan]::FromMinutes(5))
        $receipt.MessageId | Should -Be 'pester-1'
        $message = Receive-IoTHubMessage -Timeout 15
        $message.Body | Should -Be '{"led":"on"}'
        $message.Properties.priority | Should -Be 'high'
        $message.MessageId | Should -Be 'pester-1'
    }

    It 'reads the delivery feedback once' {
        $receipt = Send-IoTHubCloudMessage -DeviceId $deviceId -Message 'ack me' -Ack full
        Receive-IoTHubMessage -Timeout 15 | Out-Null
        $feedback = $receipt | Receive-IoTHubCloudMessageFeedback -Timeout 15
        $feedback.StatusCode | Should -Be 'Success'
        $feedback.DeviceId | Should -Be $deviceId
        { $receipt | Receive-IoTHubCloudMessageFeedback -Timeout 2 -ErrorAction Stop } |
            Should -Throw -ErrorId 'CloudMessageFeedbackTimedOut,IoTHubMqtt.Commands.Fleet.ReceiveIoTHubCloudMessageFeedbackCommand'
    }

    It 'reports a message to an unknown device as DeviceNotFound' {
        { Send-IoTHubCloudMessage -DeviceId (New-TestId 'nobody') -Message 'x' -ErrorAction Stop } |
            Should -Throw -ErrorId 'DeviceNotFound,IoTHubMqtt.Commands.Fleet.SendIoTHubCloudMessageCommand'
    }

    It 'reads telemetry with properties, enqueued time and partition' {
        1..3 | ForEach-Object { Send-IoTHubMessage -Body @{ n = $_ } -Property @{ kind = 'count' } } | Out-Null
        $messages = Receive-IoTHubTelemetry -DeviceId $deviceId -Count 3 -Timeout 30
        $messages.Body | Should -Be @('{"n":1}', '{"n":2}', '{"n":3}')
        $messages[0].Properties.kind | Should -Be 'count'
        $messages[0].EnqueuedTime | Should -BeOfType [DateTimeOffset]
        $messages[0].PartitionId | Should -BeIn @('0', '1', '2', '3')
    }

    It 'times out with TelemetryWaitTimedOut when nothing arrives' {
        { Receive-IoTHubTelemetry -DeviceId (New-TestId 'quiet') -Count 1 -Timeout 1 -ErrorAction Stop } |
            Should -Throw -ErrorId 'TelemetryWaitTimedOut,IoTHubMqtt.Commands.Fleet.ReceiveIoTHubTelemetryCommand'
    }

    It 'refuses a wrong policy key over AMQP with IoTHubUnauthorized' {
        $wrong = "HostName=$($hub.HostName);SharedAccessKeyName=iothubowner;SharedAccessKey=$([Convert]::ToBase64String([byte[]]::new(32)))"
        { Send-IoTHubCloudMessage -ConnectionString $wrong -Port $hub.HttpsPort -CaCertificatePath $hub.CaCertificatePath -DeviceId $deviceId -Message 'x' -ErrorAction Stop } |
            Should -Throw -ErrorId 'IoTHubUnauthorized,IoTHubMqtt.Commands.Fleet.SendIoTHubCloudMessageCommand'
        { Receive-IoTHubTelemetry -ConnectionString $wrong -Port $hub.HttpsPort -CaCertificatePath $hub.CaCertificatePath -Timeout 1 -ErrorAction Stop } |
            Should -Throw -ErrorId 'IoTHubUnauthorized,IoTHubMqtt.Commands.Fleet.ReceiveIoTHubTelemetryCommand'
    }
}

Describe 'Provision-Fleet example' -Tags 'CI' {
    It 'goes from a CSV to device configurations and checks each device' {
        $dir = Join-Path ([IO.Path]::GetTempPath()) (New-TestId 'fleet')
        New-Item -ItemType Directory -Path $dir | Out-Null
        try {
            $csv = Join-Path $dir 'fleet.csv'
            Set-Content -Path $csv -Value @('DeviceId', (New-TestId 'pf'), (New-TestId 'pf'))
            $example = Get-ChildItem (Join-Path (Split-Path (Get-Module IoTHubMqtt).Path) 'examples/Provision-Fleet.ps1')
            # Without -ConnectionString the example starts an emulator of its own (and makes it the session default: this block runs last).
            $results = & $example.FullName -CsvPath $csv -OutputPath (Join-Path $dir 'configs')
            $results.Count | Should -Be 2
            $results.Answered | Should -Be @($true, $true)
            # Only the results reach the pipeline: exported, they are one row a device.
            $results | Export-Csv -Path (Join-Path $dir 'results.csv')
            (Import-Csv -Path (Join-Path $dir 'results.csv')).DeviceId | Should -Be (Get-Content $csv | Select-Object -Skip 1)
            (Get-ChildItem (Join-Path $dir 'configs') -Filter '*.json').Count | Should -Be 2
        }
        finally {
            Remove-Item $dir -Recurse -Force -ErrorAction SilentlyContinue
        }
    }
}
