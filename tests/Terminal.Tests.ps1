#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# What only real pwsh shows: tab completion through TabExpansion2, Get-Help rendering, thread jobs and
# ForEach-Object -Parallel, exit codes of 'pwsh -File' scripts, and the views at 80 and 120 columns.

BeforeAll {
    $script:manifest = if ($env:IOTHUBMQTT_MODULE) { $env:IOTHUBMQTT_MODULE } else {
        Get-ChildItem (Join-Path $PSScriptRoot '../out/IoTHubMqtt/*/IoTHubMqtt.psd1') | Select-Object -First 1 -ExpandProperty FullName
    }
    Import-Module $manifest -Force

    . (Join-Path $PSScriptRoot 'Shared/ChildPwsh.ps1')

    function script:Get-Completion([string] $Line) {
        (TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText
    }
}

Describe 'Tab completion through TabExpansion2' -Tags 'CI' {
    It 'completes -Chip values' {
        Get-Completion 'Install-Esp32Firmware -Chip Esp32S' | Should -Be @('Esp32S2', 'Esp32S3')
    }

    It 'completes -Transport values in their own casing' {
        Get-Completion 'Connect-IoTHub -Transport m' | Should -Be @('Mqtt', 'MqttNoTls')
        Get-Completion 'Send-IoTHubMessage -Transport W' | Should -Be @('WebSocket')
    }

    It 'completes -Ack values in the casing of every other fixed choice' {
        Get-Completion 'Send-IoTHubCloudMessage -DeviceId d -Message m -Ack ' | Should -Be @('Full', 'Negative', 'None', 'Positive')
    }

    It 'completes -Port with the network forms and the serial devices present' {
        $offered = Get-Completion 'Install-Esp32Firmware -Port '
        $offered | Should -Contain 'socket://'
        $offered | Should -Contain 'rfc2217://'
        Get-Completion 'Read-Esp32Flash -Port /dev/tt' | Should -Not -BeNullOrEmpty
    }

    It 'completes -DeviceId from the hub of the session service connection' {
        $hub = Start-IoTHubEmulator
        try {
            $service = $hub | Connect-IoTHubService
            'tab-a', 'tab-b', 'other' | ForEach-Object { [pscustomobject]@{ DeviceId = $_ } } | New-IoTHubDevice -Connection $service | Out-Null
            Get-Completion 'Invoke-IoTHubMethod -Name ping -DeviceId tab' | Should -Be @('tab-a', 'tab-b')
            Get-Completion "Get-IoTHubDevice -DeviceId o" | Should -Be @('other')
        }
        finally {
            $hub | Stop-IoTHubEmulator -Confirm:$false
        }
    }
}

Describe 'Get-Help' -Tags 'CI' {
    BeforeDiscovery {
        $manifestPath = if ($env:IOTHUBMQTT_MODULE) { $env:IOTHUBMQTT_MODULE } else {
            Get-ChildItem (Join-Path $PSScriptRoot '../out/IoTHubMqtt/*/IoTHubMqtt.psd1') | Select-Object -First 1 -ExpandProperty FullName
        }
        $script:cmdlets = @((Import-PowerShellDataFile $manifestPath).CmdletsToExport | ForEach-Object { @{ Name = $_ } })
        $script:topics = @(Get-ChildItem (Join-Path (Split-Path $manifestPath) 'en-US') -Filter 'about_*.help.txt' |
            ForEach-Object { @{ Name = $_.Name -replace '\.help\.txt$' } })
    }

    It '<Name> -Full renders a synopsis, syntax, parameters and at least two examples' -ForEach $cmdlets {
        $help = Get-Help $Name -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -Match ([regex]::Escape($Name) + '\s*\[')   # a real synopsis, not the generated syntax line
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 2
        $text = $help | Out-String -Width 120
        $text | Should -Match 'SYNTAX'
        $text | Should -Match 'PARAMETERS'
        $text | Should -Match 'EXAMPLE 2|Example 2'
    }

    It '<Name> renders with its own name and a real synopsis' -ForEach $topics {
        $text = Get-Help $Name | Out-String -Width 120
        $text | Should -Match "(?m)^\s*$Name\b"
        $text | Should -Not -Match 'SHORT DESCRIPTION\s*$'
        (Get-Help $Name).Synopsis | Should -Not -BeNullOrEmpty
        (Get-Help $Name).Synopsis | Should -Not -Be 'SHORT DESCRIPTION'
    }
}

Describe 'Thread jobs and ForEach-Object -Parallel' -Tags 'CI' {
    It 'runs the module in Start-ThreadJob' {
        $job = Start-ThreadJob -ScriptBlock {
            param($Manifest)
            Import-Module $Manifest
            ConvertFrom-IoTHubConnectionString 'HostName=h.azure-devices.net;DeviceId=in-a-job;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAA=='
        } -ArgumentList $manifest
        ($job | Receive-Job -Wait -AutoRemoveJob).DeviceId | Should -Be 'in-a-job'
    }

    It 'signs tokens in ForEach-Object -Parallel, one runspace per item' {
        $tokens = 1..4 | ForEach-Object -Parallel {
            Import-Module $using:manifest
            New-IoTHubSasToken -ResourceUri "h.azure-devices.net/devices/d$_" -Key 'cGFzc3dvcmQ='
        } -ThrottleLimit 4
        $tokens.Count | Should -Be 4
        $tokens | ForEach-Object { $_ | Should -Match '^SharedAccessSignature sr=h\.azure-devices\.net%2Fdevices%2Fd\d&' }
    }

    It 'sends telemetry from parallel runspaces to one emulator' {
        $hub = Start-IoTHubEmulator
        try {
            $hub | Connect-IoTHubService | Out-Null
            $devices = 'par-1', 'par-2', 'par-3' | ForEach-Object { [pscustomobject]@{ DeviceId = $_ } } | New-IoTHubDevice
            $endpoint = @{ Port = $hub.MqttTlsPort; CaCertificatePath = $hub.CaCertificatePath }
            $sent = $devices | ForEach-Object -Parallel {
                Import-Module $using:manifest
                $endpoint = $using:endpoint
                "from $($_.DeviceId)" | Send-IoTHubMessage -ConnectionString $_.ConnectionString @endpoint -PassThru
            } -ThrottleLimit 3
            @($sent).Count | Should -Be 3
            (Receive-IoTHubTelemetry -Count 3 -Timeout 30).Body | Sort-Object | Should -Be @('from par-1', 'from par-2', 'from par-3')
        }
        finally {
            $hub | Stop-IoTHubEmulator -Confirm:$false
        }
    }
}

Describe "Exit codes of 'pwsh -File' scripts" -Tags 'CI' {
    It 'exits 1 when a cmdlet error stops the script, not after a non-terminating one' {
        $run = Invoke-ChildPwsh -Script "Import-Module '$manifest'; ConvertFrom-IoTHubConnectionString 'HostName=h.net'; 'went on'; `$ErrorActionPreference = 'Stop'; New-IoTHubSasToken -ResourceUri r -Key 'not base64!'; 'not reached'"
        $run.ExitCode | Should -Be 1
        $run.Output | Should -Match 'went on'   # a non-terminating error before it let the script go on
        $run.Output | Should -Match 'The Key is not a base64 string'
        $run.Output | Should -Not -Match 'not reached'
    }

    It 'exits with the code the script chooses from the ErrorId it caught' {
        $run = Invoke-ChildPwsh -Script @"
Import-Module '$manifest'
try { New-IoTHubSasToken -ResourceUri r -Key 'cGFzc3dvcmQ=' -TimeToLive 0 -ErrorAction Stop }
catch { if (`$_.FullyQualifiedErrorId -like 'TimeToLiveNotPositive,*') { exit 3 } }
exit 0
"@
        $run.ExitCode | Should -Be 3
    }

    It 'exits 1 for a script with a parse error, before running anything' {
        $run = Invoke-ChildPwsh -Script "'started'`nif ( {"
        $run.ExitCode | Should -Be 1
        $run.Output | Should -Not -Match 'started'
    }
}

Describe 'Views at 80 and 120 columns' -Tags 'CI' {
    BeforeAll {
        $script:hub = Start-IoTHubEmulator
        $service = $hub | Connect-IoTHubService
        $device = New-IoTHubDevice -DeviceId 'format-device-01' -Connection $service
        $connection = Connect-IoTHub -ConnectionString $device.ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault
        Register-IoTHubMethod -Connection $connection -Name reboot -ScriptBlock { @{ ok = $true } }
        $job = Invoke-IoTHubMethod -Connection $service -DeviceId $device.DeviceId -Name reboot -Payload @{ delay = 1 } -AsJob
        $call = Wait-IoTHubMethodCall -Connection $connection -Timeout 30
        $result = $job | Receive-Job -Wait
        $job | Remove-Job
        Send-IoTHubCloudMessage -Connection $service -DeviceId $device.DeviceId -Message 'hello' -Property @{ kind = 'greeting' } | Out-Null
        $sent = [pscustomobject]@{ t = 21.5 } | Send-IoTHubMessage -Connection $connection -Property @{ source = 'lab' } -PassThru
        $script:samples = [ordered]@{
            'connection string' = ConvertFrom-IoTHubConnectionString $device.ConnectionString
            'device key'        = New-IoTHubDeviceKey -GroupKey ([Convert]::ToBase64String([byte[]]::new(64))) -RegistrationId 'format-device-01'
            'emulator'          = $hub
            'device'            = $device
            'connection'        = $connection
            'sent message'      = $sent
            'received message'  = Receive-IoTHubMessage -Connection $connection -Timeout 30
            'telemetry'         = Receive-IoTHubTelemetry -Connection $service -DeviceId $device.DeviceId -Count 1 -Timeout 30
            'twin update'       = Update-IoTHubTwin -Connection $connection -Reported @{ firmware = '1.2.3' }
            'twin'              = Get-IoTHubTwin -Connection $connection
            'method call'       = $call
            'method result'     = $result
        }
        $connection | Disconnect-IoTHub
    }

    AfterAll { $hub | Stop-IoTHubEmulator -Confirm:$false }

    It 'names the method MethodName and Name on both sides' {
        $samples['method call'].Name | Should -Be 'reboot'
        $samples['method call'].MethodName | Should -Be 'reboot'
        $samples['method result'].MethodName | Should -Be 'reboot'
        $samples['method result'].Name | Should -Be 'reboot'
    }

    It 'the <_> view keeps every line within 80 and 120 columns' -ForEach @(
        'connection string', 'device key', 'emulator', 'device', 'connection', 'sent message', 'received message',
        'telemetry', 'twin update', 'twin', 'method call', 'method result') {
        $object = $samples[$_]
        $object | Should -Not -BeNullOrEmpty
        foreach ($width in 80, 120) {
            $lines = ($object | Out-String -Width $width) -split "`r?`n"
            $lines | Where-Object { $_.Length -gt $width } | Should -BeNullOrEmpty -Because "at $width columns"
        }
    }

    It 'the <_> table view fits: one header line and no cut column at 120 columns, one header line at 80' -ForEach @(
        'connection string', 'device key', 'device', 'connection', 'sent message', 'received message', 'telemetry',
        'twin update', 'method call', 'method result') {
        $object = $samples[$_]
        $wide = ($object | Format-Table | Out-String -Width 120) -split "`r?`n" | Where-Object { $_.Trim() }
        $wide | Where-Object { $_ -match '…' } | Should -BeNullOrEmpty -Because "no column of the $_ view should be cut at 120 columns:`n$($wide -join "`n")"
        $narrow = ($object | Format-Table | Out-String -Width 80) -split "`r?`n" | Where-Object { $_.Trim() }
        $narrow[1] | Should -Match '^-+( +-+)*\s*$' -Because "the header of the $_ view should not wrap at 80 columns:`n$($narrow -join "`n")"
        $narrow[2] | Should -Match ([regex]::Escape($object.DeviceId + '')) -Because "the device id is whole in the $_ view at 80 columns"
    }
}
