#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Device cmdlets against the local emulator. ./build.ps1 -Task Test runs this with the built module.

BeforeAll {
    $manifest = if ($env:IOTHUBMQTT_MODULE) { $env:IOTHUBMQTT_MODULE } else {
        Get-ChildItem (Join-Path $PSScriptRoot '../out/IoTHubMqtt/*/IoTHubMqtt.psd1') | Select-Object -First 1 -ExpandProperty FullName
    }
    Import-Module $manifest -Force
    $script:hub = Start-IoTHubEmulator
    $script:service = $hub | Connect-IoTHubService
}

AfterAll {
    $hub | Stop-IoTHubEmulator
}

Describe 'Connect-IoTHub' -Tags 'CI' {
    BeforeEach {
        $script:deviceId = "pester-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        $script:cs = $hub.CreateDevice($deviceId).ConnectionString
    }

    It 'connects and shows no secret' {
        $conn = Connect-IoTHub -ConnectionString $cs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault
        $conn.State | Should -Be 'Connected'
        ($conn | Format-List * | Out-String) | Should -Not -Match ([regex]::Escape(($cs -split 'SharedAccessKey=')[1]))
        $conn | Disconnect-IoTHub
    }

    It 'refuses a wrong key with IoTHubUnauthorized' {
        { Connect-IoTHub -HostName $hub.HostName -DeviceId $deviceId -Key ([Convert]::ToBase64String([byte[]]::new(32))) -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -Timeout 10 -ErrorAction Stop } |
            Should -Throw -ErrorId 'IoTHubUnauthorized,IoTHubMqtt.Commands.Device.ConnectIoTHubCommand'
    }
}

Describe 'Device messaging' -Tags 'CI' {
    BeforeAll {
        $script:deviceId = "pester-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        $cs = $hub.CreateDevice($deviceId).ConnectionString
        $script:conn = Connect-IoTHub -ConnectionString $cs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
    }

    AfterAll { $conn | Disconnect-IoTHub }

    It 'streams a pipeline of telemetry and every message is acknowledged' {
        $sent = 1..200 | ForEach-Object { @{ n = $_ } } | Send-IoTHubMessage -PassThru
        $sent.Count | Should -Be 200
        $received = Receive-IoTHubTelemetry -DeviceId $deviceId -Count 200 -Timeout 30
        $received.Count | Should -Be 200
    }

    It 'receives cloud-to-device messages with their properties' {
        Send-IoTHubCloudMessage -DeviceId $deviceId -Message 'turn on' -Property @{ kind = 'command' } | Out-Null
        $message = Receive-IoTHubMessage -Timeout 15
        $message.Body | Should -Be 'turn on'
        $message.Properties.kind | Should -Be 'command'
    }

    It 'answers a direct method with the registered handler' {
        Register-IoTHubMethod -Name double -ScriptBlock { @{ value = $_.Payload.value * 2 } }
        $job = Invoke-IoTHubMethod -DeviceId $deviceId -Name double -Payload @{ value = 21 } -AsJob
        (Wait-IoTHubMethodCall -Timeout 30).Status | Should -Be 200
        (Receive-Job $job -Wait).Payload.value | Should -Be 42
    }

    It 'patches reported properties and sees desired changes' {
        $update = Update-IoTHubTwin @{ firmware = '1.0.0' }
        $update.ReportedVersion | Should -BeGreaterThan 0
        Set-IoTHubDesiredProperty -DeviceId $deviceId -Property @{ telemetryInterval = 10 } | Out-Null
        (Wait-IoTHubDesiredProperty -Name telemetryInterval -Timeout 15).Patch.telemetryInterval | Should -Be 10
        (Get-IoTHubTwin).Reported.firmware | Should -Be '1.0.0'
    }

    It 'times out waiting for a desired change with DesiredPropertyWaitTimedOut' {
        { Wait-IoTHubDesiredProperty -Timeout 1 -ErrorAction Stop } |
            Should -Throw -ErrorId 'DesiredPropertyWaitTimedOut,IoTHubMqtt.Commands.Device.WaitIoTHubDesiredPropertyCommand'
    }
}
