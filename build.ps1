#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests and packages the IoTHubMqtt module.
.DESCRIPTION
    Build   - dotnet build; lays out the importable module in out/IoTHubMqtt/<version>/.
    Test    - dotnet test: everything that needs no hardware or cloud, the Pester suites tests/*.Tests.ps1 in the pinned
              pwsh among it.
    Package - a Release build of the module folder, help compiled with platyPS when it is installed, and a .nupkg
              in out/packages/ ready for Install-PSResource and Publish-PSResource (the same packer as
              'dotnet build src/IoTHubMqtt -c Release -p:PackModule=true').
.EXAMPLE
    ./build.ps1 -Task Build, Test
.EXAMPLE
    ./build.ps1 -Task Package -Configuration Release
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Package')]
    [string[]] $Task = @('Build'),

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Debug'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = $PSScriptRoot
$version = (Import-PowerShellDataFile (Join-Path $root 'IoTHubMqtt.psd1')).ModuleVersion
$moduleOut = Join-Path $root "out/IoTHubMqtt/$version"

function Invoke-Dotnet {
    param([Parameter(ValueFromRemainingArguments)] [string[]] $Arguments)
    Write-Verbose "dotnet $Arguments"
    & dotnet @Arguments
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($Arguments[0]) failed with exit code $LASTEXITCODE." }
}

function Invoke-Build {
    Invoke-Dotnet build (Join-Path $root 'IoTHubMqtt.sln') -c $Configuration
    Write-Host "Module laid out in $moduleOut"
}

function Invoke-Test {
    # The README's test command: the xunit projects and, in the pinned pwsh with Pester 5.7.1 (both restored by the
    # build), every tests/*.Tests.ps1 suite against the built module.
    Invoke-Dotnet test --solution (Join-Path $root 'IoTHubMqtt.sln') -c $Configuration
}

function Invoke-Package {
    $script:Configuration = 'Release'
    Invoke-Build

    if (Get-Module -ListAvailable platyPS) {
        Import-Module platyPS
        New-ExternalHelp -Path (Join-Path $root 'module/help') -OutputPath (Join-Path $moduleOut 'en-US') -Force | Out-Null
        Write-Host 'Help compiled with platyPS.'
    }

    Test-ModuleManifest (Join-Path $moduleOut 'IoTHubMqtt.psd1') | Out-Null

    # The same packer as 'dotnet build src/IoTHubMqtt -p:PackModule=true': the module folder at the package root and
    # a nuspec from the manifest (PSModule, PSCmdlet_*, PSIncludes_Cmdlet tags), as Publish-PSResource writes it.
    $packages = Join-Path $root 'out/packages'
    $packer = Join-Path $root "src/IoTHubMqtt.HelpBuilder/bin/$Configuration/net10.0/iothubmqtt-helpbuilder.dll"
    Invoke-Dotnet $packer package $moduleOut $packages

    Get-ChildItem $packages -Filter "IoTHubMqtt.$version.nupkg" | ForEach-Object { Write-Host "Package: $($_.FullName)" }
}

foreach ($t in $Task) {
    switch ($t) {
        'Build' { Invoke-Build }
        'Test' { Invoke-Test }
        'Package' { Invoke-Package }
    }
}
