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

    It 'sends every message from each device of a fleet in one pipeline' {
        $ids = 1..3 | ForEach-Object { "$deviceId-fleet$_" }
        $fleet = foreach ($id in $ids) {
            Connect-IoTHub -ConnectionString $hub.CreateDevice($id).ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault
        }
        try {
            $sent = 1..20 | ForEach-Object { @{ n = $_ } } | Send-IoTHubMessage -Connection $fleet -PassThru
        } finally { $fleet | Disconnect-IoTHub }
        $sent.Count | Should -Be 60
        ($sent | Select-Object -First 3).DeviceId | Should -Be $ids
        foreach ($id in $ids) {
            $received = Receive-IoTHubTelemetry -DeviceId $id -Count 20 -Timeout 30
            $received.Body | Should -Be (1..20 | ForEach-Object { "{""n"":$_}" })
        }
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

Describe 'Device reliability and transports' -Tags 'CI' {
    BeforeEach {
        $script:deviceId = "pester-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    }

    AfterEach { $hub.DeviceOperationsPerSecond = 0 }

    It 'sends every message through a throttling hub' {
        $cs = $hub.CreateDevice($deviceId).ConnectionString
        $conn = Connect-IoTHub -ConnectionString $cs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault
        $hub.DeviceOperationsPerSecond = 50
        $sent = 1..150 | ForEach-Object { "t$_" } | Send-IoTHubMessage -Connection $conn -PassThru
        $sent.Count | Should -Be 150
        $conn.ReconnectCount | Should -BeGreaterThan 0
        $hub.DeviceOperationsPerSecond = 0
        (Receive-IoTHubTelemetry -DeviceId $deviceId -Count 150 -Timeout 30).Count | Should -BeGreaterOrEqual 150
        $conn | Disconnect-IoTHub
    }

    It 'connects with a self-signed X.509 certificate and refuses another one' {
        $make = {
            $key = [System.Security.Cryptography.ECDsa]::Create()
            $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=pester', $key, [System.Security.Cryptography.HashAlgorithmName]::SHA256)
            $ephemeral = $request.CreateSelfSigned([DateTimeOffset]::UtcNow.AddDays(-1), [DateTimeOffset]::UtcNow.AddDays(1))
            [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($ephemeral.Export('Pfx'))
        }
        $cert = & $make
        $other = & $make
        $hub.CreateX509Device($deviceId, $cert.Thumbprint)
        $conn = Connect-IoTHub -HostName $hub.HostName -DeviceId $deviceId -Certificate $cert -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault
        (Send-IoTHubMessage 'x509' -Connection $conn -PassThru).Size | Should -Be 4
        $conn | Disconnect-IoTHub
        { Connect-IoTHub -HostName $hub.HostName -DeviceId $deviceId -Certificate $other -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault -Timeout 10 -ErrorAction Stop } |
            Should -Throw -ErrorId 'IoTHubUnauthorized,IoTHubMqtt.Commands.Device.ConnectIoTHubCommand'
    }

    It 'refuses a proxy without the WebSocket transport' {
        $cs = $hub.CreateDevice($deviceId).ConnectionString
        { Send-IoTHubMessage 'x' -ConnectionString $cs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -Proxy 'http://127.0.0.1:3128' -ErrorAction Stop } |
            Should -Throw -ErrorId 'ProxyRequiresWebSocket,IoTHubMqtt.Commands.Device.SendIoTHubMessageCommand'
    }
}
