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
