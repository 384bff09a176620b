#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests and packages the IoTHubMqtt module.
.DESCRIPTION
    Build   - dotnet build of the solution; lays out the importable module in out/IoTHubMqtt/<version>/.
    Test    - dotnet test: everything that needs no hardware or cloud, the Pester suites tests/*.Tests.ps1 in the pinned
              pwsh among it (the README's test command).
    Package - builds the module (src/IoTHubMqtt in -Configuration), checks the manifest with Test-ModuleManifest, and
              packs the module folder with PSResourceGet's Compress-PSResource into <PackagePath>/IoTHubMqtt.<version>.nupkg,
              the package Install-PSResource installs from a local repository (a folder) and Publish-PSResource pushes;
              beside it, in <PackagePath>/help, the updatable help that Update-Help reads from the manifest's HelpInfoURI.

    Without pwsh installed: 'dotnet tool restore' then 'dotnet pwsh ./build.ps1 …' (the pwsh pinned in
    .config/dotnet-tools.json).
.EXAMPLE
    ./build.ps1 -Task Build, Test
.EXAMPLE
    ./build.ps1 -Task Package -Configuration Release
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Build, Test, Package
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Package')]
    [string[]] $Task = @('Build'),

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Debug',

    # Where Package writes the .nupkg (and help/); a folder that is, as it is, a local PSResourceGet repository.
    [string] $PackagePath = (Join-Path $PSScriptRoot 'out/packages')
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
    # The README's test command, run in the repository root (with -c when not the default Debug).
    Push-Location $root
    try {
        if ($Configuration -eq 'Debug') { Invoke-Dotnet test } else { Invoke-Dotnet test -c $Configuration }
    }
    finally {
        Pop-Location
    }
}

function Invoke-Package {
    Invoke-Dotnet build (Join-Path $root 'src/IoTHubMqtt/IoTHubMqtt.csproj') -c $Configuration
    $manifest = Test-ModuleManifest -Path (Join-Path $moduleOut 'IoTHubMqtt.psd1')
    Write-Host "Manifest: $($manifest.Name) $($manifest.Version), $($manifest.ExportedCmdlets.Count) cmdlets"

    $null = New-Item -ItemType Directory -Path $PackagePath -Force
    $package = Join-Path $PackagePath "IoTHubMqtt.$version.nupkg"
    Remove-Item -LiteralPath $package -ErrorAction Ignore
    # PSResourceGet makes the nuspec from the manifest (id, version, authors, tags PSModule/PSCmdlet_*/PSIncludes_Cmdlet,
    # project, licence and release-notes links) and puts the module folder at the package root.
    Compress-PSResource -Path $moduleOut -DestinationPath $PackagePath
    if (-not (Test-Path -LiteralPath $package)) { throw "Compress-PSResource wrote no $package." }
    $size = (Get-Item -LiteralPath $package).Length
    Write-Host ("Package: {0} ({1:N1} MB)" -f $package, ($size / 1MB))

    $helper = Join-Path $root "src/IoTHubMqtt.HelpBuilder/bin/$Configuration/net10.0/iothubmqtt-helpbuilder.dll"
    Invoke-Dotnet $helper updatable $moduleOut (Join-Path $PackagePath 'help')
}

foreach ($t in $Task) {
    switch ($t) {
        'Build' { Invoke-Build }
        'Test' { Invoke-Test }
        'Package' { Invoke-Package }
    }
}
