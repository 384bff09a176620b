#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Pester tests for pwsh users: ./build.ps1 -Task Test runs them against the built module (out/IoTHubMqtt/<version>).

BeforeAll {
    $manifest = if ($env:IOTHUBMQTT_MODULE) { $env:IOTHUBMQTT_MODULE } else {
        Get-ChildItem (Join-Path $PSScriptRoot '../out/IoTHubMqtt/*/IoTHubMqtt.psd1') | Select-Object -First 1 -ExpandProperty FullName
    }
    Import-Module $manifest -Force
    $script:groupKey = '8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=='
    $script:deviceString = 'HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=cGFzc3dvcmQ='
}

Describe 'New-IoTHubSasToken' -Tags 'CI' {
    It 'signs a resource with a key for one hour by default' {
        $before = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
        $token = New-IoTHubSasToken -ResourceUri 'myhub.azure-devices.net/devices/dev1' -Key 'cGFzc3dvcmQ='
        $after = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
        $token | Should -Match '^SharedAccessSignature sr=myhub\.azure-devices\.net%2Fdevices%2Fdev1&sig=[^&]+&se=\d+$'
        # One hour from the moment it was made, whenever between $before and $after that was (a loaded machine is slow).
        $expiry = [long]($token -replace '.*&se=', '')
        $expiry - 3600 | Should -BeGreaterOrEqual $before
        $expiry - 3600 | Should -BeLessOrEqual ($after + 1)
    }

    It 'takes resource, key and policy from a connection string' {
        New-IoTHubSasToken -ConnectionString 'HostName=h.azure-devices.net;SharedAccessKeyName=service;SharedAccessKey=cGFzc3dvcmQ=' |
            Should -Match '&skn=service$'
    }

    It 'binds parsed connection strings from the pipeline' {
        $deviceString | ConvertFrom-IoTHubConnectionString | New-IoTHubSasToken | Should -Match 'sr=myhub\.azure-devices\.net%2Fdevices%2Fdev1'
    }

    It 'rejects a key that is not base64' {
        { New-IoTHubSasToken -ResourceUri r -Key 'not base64!' -ErrorAction Stop } |
            Should -Throw -ErrorId 'KeyNotBase64,IoTHubMqtt.Commands.Credentials.NewIoTHubSasTokenCommand'
    }

    It 'rejects an expiry in the past' {
        { New-IoTHubSasToken -ResourceUri r -Key 'cGFzc3dvcmQ=' -Expiry ([DateTimeOffset]::UtcNow.AddMinutes(-1)) -ErrorAction Stop } |
            Should -Throw -ErrorId 'ExpiryInPast,IoTHubMqtt.Commands.Credentials.NewIoTHubSasTokenCommand'
    }

    It 'rejects a time to live of zero' {
        { New-IoTHubSasToken -ResourceUri r -Key 'cGFzc3dvcmQ=' -TimeToLive 0 -ErrorAction Stop } |
            Should -Throw -ErrorId 'TimeToLiveNotPositive,IoTHubMqtt.Commands.Credentials.NewIoTHubSasTokenCommand'
    }
}

Describe 'ConvertFrom-IoTHubConnectionString' -Tags 'CI' {
    It 'parses a device string in any field order' {
        $cs = 'SharedAccessKey=cGFzc3dvcmQ=;DeviceId=dev1;HostName=myhub.azure-devices.net' | ConvertFrom-IoTHubConnectionString
        $cs.Kind | Should -Be 'Device'
        $cs.DeviceId | Should -Be 'dev1'
        $cs.ResourceUri | Should -Be 'myhub.azure-devices.net/devices/dev1'
    }

    It 'does not show the key in its default display' {
        $text = $deviceString | ConvertFrom-IoTHubConnectionString | Out-String
        $text | Should -Match 'dev1'
        $text | Should -Not -Match 'cGFzc3dvcmQ='
        ($deviceString | ConvertFrom-IoTHubConnectionString | Format-List | Out-String) | Should -Not -Match 'cGFzc3dvcmQ='
    }

    It 'writes a non-terminating error for a bad string and goes on' {
        $out = 'HostName=a.net;DeviceId=d1;SharedAccessKey=cGFzc3dvcmQ=', 'HostName=a.net' |
            ConvertFrom-IoTHubConnectionString -ErrorVariable errs -ErrorAction SilentlyContinue
        $out.DeviceId | Should -Be 'd1'
        $errs[0].FullyQualifiedErrorId | Should -Be 'ConnectionStringMissingDeviceId,IoTHubMqtt.Commands.Credentials.ConvertFromIoTHubConnectionStringCommand'
    }
}

Describe 'New-IoTHubDeviceKey' -Tags 'CI' {
    It 'derives the documented group-enrollment key' {
        (New-IoTHubDeviceKey -GroupKey $groupKey -RegistrationId 'sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6').DeviceKey |
            Should -Be 'Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc='
    }

    It 'takes registration ids from a CSV' {
        $csv = "DeviceId`nsensor-1`nsensor-2" | ConvertFrom-Csv
        ($csv | New-IoTHubDeviceKey -GroupKey $groupKey).Count | Should -Be 2
    }

    It 'shows a fingerprint, not the key' {
        $text = New-IoTHubDeviceKey -GroupKey $groupKey -RegistrationId 'dev-a' | Out-String
        $text | Should -Match 'dev-a'
        $text | Should -Not -Match ([regex]::Escape((New-IoTHubDeviceKey -GroupKey $groupKey -RegistrationId 'dev-a').DeviceKey))
    }
}
