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

Describe 'Tab completion' -Tags 'CI' {
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
}

Describe 'The package, installed as users install it' -Tags 'CI' {
    BeforeAll {
        . (Join-Path $PSScriptRoot 'Shared/ChildPwsh.ps1')
        $script:packages = Join-Path $TestDrive 'packages'
        # build.ps1 -Task Package in real pwsh: Test-ModuleManifest, then PSResourceGet's Compress-PSResource.
        $build = Invoke-ChildPwsh -Script "& '$(Join-Path $PSScriptRoot '../build.ps1')' -Task Package -PackagePath '$packages'"
        $build.ExitCode | Should -Be 0 -Because $build.Output
        $script:nupkg = Get-Item (Join-Path $packages 'IoTHubMqtt.*.nupkg')

        # A fresh pwsh with its own HOME: an empty CurrentUser module path and repository store.
        $userHome = Join-Path $TestDrive 'home'
        $null = New-Item -ItemType Directory -Path $userHome
        $script:installed = Invoke-ChildPwsh -Environment @{ HOME = $userHome; PSModulePath = $null } -Script @"
`$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name local -Uri '$packages' -Trusted
Install-PSResource IoTHubMqtt -Repository local -Scope CurrentUser
`$module = Import-Module IoTHubMqtt -PassThru
`$manifest = Test-ModuleManifest (Join-Path `$module.ModuleBase 'IoTHubMqtt.psd1')
Update-Help -Module IoTHubMqtt -SourcePath '$(Join-Path $packages 'help')' -UICulture en-US -Force
[ordered]@{
    ModuleBase = `$module.ModuleBase
    Cmdlets    = `$manifest.ExportedCmdlets.Count
    DeviceId   = (ConvertFrom-IoTHubConnectionString 'HostName=pkg.azure-devices.net;DeviceId=from-package;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAA==').DeviceId
    Online     = (Get-Help Send-IoTHubMessage).relatedLinks.navigationLink[0].uri
    About      = (Get-Help about_IoTHubMqtt).Synopsis
    Runtimes   = @(Get-ChildItem (Join-Path `$module.ModuleBase 'dependencies/runtimes') -Directory | ForEach-Object Name)
} | ConvertTo-Json -Compress
"@
    }

    It 'is made by PSResourceGet from the manifest, and weighs what the README says' {
        $nupkg.Name | Should -Be "IoTHubMqtt.$((Import-PowerShellDataFile $manifest).ModuleVersion).nupkg"
        $nupkg.Length / 1MB | Should -BeLessThan 12
    }

    It 'installs with Install-PSResource into a clean module path, imports by name and runs a cmdlet' {
        $installed.ExitCode | Should -Be 0 -Because $installed.Output
        $result = ($installed.Output -split "`n")[-1] | ConvertFrom-Json
        $result.ModuleBase | Should -BeLike (Join-Path $TestDrive 'home/*')
        $result.Cmdlets | Should -Be (Import-PowerShellDataFile $manifest).CmdletsToExport.Count
        $result.DeviceId | Should -Be 'from-package'
        $result.About | Should -Be 'Script Azure IoT Hub devices and fleets over MQTT with no Azure SDK.'
        $result.Online | Should -Be 'https://github.com/iothubmqtt/IoTHubMqtt/blob/main/module/help/Send-IoTHubMessage.md'
    }

    It 'carries native libraries only for the platforms pwsh 7.4+ runs on' {
        $result = ($installed.Output -split "`n")[-1] | ConvertFrom-Json
        $result.Runtimes | Sort-Object | Should -Be @('linux-arm', 'linux-arm64', 'linux-musl-x64', 'linux-x64', 'osx-arm64', 'osx-x64', 'unix', 'win', 'win-arm64', 'win-x64', 'win-x86')
    }
}
