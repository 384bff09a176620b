# Dot-sourced by the Pester suites: a child pwsh like the one running the suite (the pwsh executable, or
# 'dotnet pwsh.dll' for the dotnet tool), with NO_COLOR so that its output is plain text.
function Invoke-ChildPwsh {
    param(
        [Parameter(Mandatory)] [string] $Script,
        [string[]] $ArgumentList = @(),
        # Extra environment variables for the child only.
        [hashtable] $Environment = @{}
    )
    $file = Join-Path ([IO.Path]::GetTempPath()) "iothubmqtt-child-$([guid]::NewGuid().ToString('N')).ps1"
    Set-Content -LiteralPath $file -Value $Script
    $saved = @{}
    try {
        foreach ($name in @($Environment.Keys) + 'NO_COLOR') {
            $saved[$name] = [Environment]::GetEnvironmentVariable($name)
        }
        $env:NO_COLOR = '1'
        foreach ($name in $Environment.Keys) { [Environment]::SetEnvironmentVariable($name, $Environment[$name]) }
        $launcher = @(if ((Split-Path ([Environment]::ProcessPath) -Leaf) -match '^dotnet') { [Environment]::ProcessPath; Join-Path $PSHOME 'pwsh.dll' } else { [Environment]::ProcessPath })
        $output = & $launcher[0] @($launcher | Select-Object -Skip 1) -NoProfile -NonInteractive -File $file @ArgumentList 2>&1
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($output | ForEach-Object { "$_" }) -join "`n" }
    }
    finally {
        foreach ($name in $saved.Keys) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) }
        Remove-Item -LiteralPath $file -ErrorAction Ignore
    }
}
