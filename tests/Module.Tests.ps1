#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }

BeforeAll {
    $script:manifest = if ($env:IOTHUBMQTT_MODULE) { $env:IOTHUBMQTT_MODULE } else {
        Get-ChildItem (Join-Path $PSScriptRoot '../out/IoTHubMqtt/*/IoTHubMqtt.psd1') | Select-Object -First 1 -ExpandProperty FullName
    }
}

Describe 'IoTHubMqtt module' -Tags 'CI' {
    It 'has a valid manifest' {
        { Test-ModuleManifest $manifest -ErrorAction Stop } | Should -Not -Throw
    }

    It 'exports exactly the cmdlets the manifest lists' {
        $module = Import-Module $manifest -Force -PassThru
        $declared = (Import-PowerShellDataFile $manifest).CmdletsToExport | Sort-Object
        $module.ExportedCmdlets.Keys | Sort-Object | Should -Be $declared
    }

    It 'has help for every exported cmdlet' {
        $module = Import-Module $manifest -Force -PassThru
        foreach ($name in $module.ExportedCmdlets.Keys) {
            $help = Get-Help $name -Full
            $help.Synopsis | Should -Not -BeNullOrEmpty -Because "$name needs a synopsis"
            @($help.Examples.Example).Count | Should -BeGreaterOrEqual 2 -Because "$name needs two examples"
        }
    }
}

Describe 'Tab completion and packaging' -Tags 'CI' {
    BeforeAll {
        Import-Module $manifest -Force
    }

    It 'completes -Chip and -Port' {
        $chips = (TabExpansion2 -inputScript 'Install-Esp32Firmware -Chip Esp32C' -cursorColumn 34).CompletionMatches.CompletionText
        $chips | Should -Contain 'Esp32C3'
        $ports = (TabExpansion2 -inputScript 'Get-Esp32Device -Port r' -cursorColumn 23).CompletionMatches.CompletionText
        $ports | Should -Contain 'rfc2217://'
    }

    It 'completes -DeviceId from the session service connection' {
        $hub = Start-IoTHubEmulator
        try {
            $null = $hub | Connect-IoTHubService
            $null = New-IoTHubDevice -DeviceId 'tab-1'
            $line = 'Get-IoTHubDevice -DeviceId tab'
            (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be @('tab-1')
        }
        finally {
            $hub | Stop-IoTHubEmulator -Confirm:$false
        }
    }

    It 'packs a .nupkg that Install-PSResource installs' -Skip:(-not (Get-Command Install-PSResource -ErrorAction Ignore)) {
        $root = Join-Path ([IO.Path]::GetTempPath()) "iothubmqtt-pester-$PID"
        $packer = Get-ChildItem (Join-Path $PSScriptRoot '../src/IoTHubMqtt.HelpBuilder/bin/*/net10.0/iothubmqtt-helpbuilder.dll') | Select-Object -First 1
        & dotnet $packer.FullName package (Split-Path $manifest) (Join-Path $root 'packages') | Out-Null
        $LASTEXITCODE | Should -Be 0
        Register-PSResourceRepository -Name "IoTHubMqttPester$PID" -Uri (Join-Path $root 'packages') -Trusted
        try {
            New-Item -ItemType Directory -Path (Join-Path $root 'Modules') | Out-Null
            Save-PSResource IoTHubMqtt -Repository "IoTHubMqttPester$PID" -Path (Join-Path $root 'Modules') -SkipDependencyCheck
            Test-Path (Join-Path $root 'Modules/IoTHubMqtt/*/IoTHubMqtt.psd1') | Should -BeTrue
        }
        finally {
            Unregister-PSResourceRepository -Name "IoTHubMqttPester$PID"
            Remove-Item $root -Recurse -Force -ErrorAction Ignore
        }
    }
}
