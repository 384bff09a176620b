<#
.SYNOPSIS
    Provisions a fleet from a CSV of serial numbers: registered devices, one configuration file each, and a check that each answers.
.DESCRIPTION
    1. Reads the CSV (a DeviceId or SerialNumber column; optional Status, PrimaryKey, SecondaryKey columns). A malformed row
       (wrong number of fields, no id) is reported as an error naming its line, and the others go on.
    2. Creates the devices in the registry (New-IoTHubDevice; re-running returns the existing devices), or with -Dps registers
       them with the Device Provisioning Service using a group enrollment key (Register-IoTHubDevice; registration ids are
       the ids in lowercase).
    3. Writes one JSON file per device into -OutputPath, named <deviceId>.json, for the firmware's configuration:
           { "deviceId": "...", "hostName": "...", "connectionString": "HostName=...;DeviceId=...;SharedAccessKey=..." }
       The files hold the device's key: they are readable by their owner only (on Linux and macOS); keep the folder private.
    4. Checks that each device answers: connects as the device with the connection string from its file, calls the direct
       method 'ping' through the service (Invoke-IoTHubMethod -AsJob) and answers it as the device (Wait-IoTHubMethodCall).
    Writes one result a device, and nothing else, to the pipeline (so '| Export-Csv' writes one row a device): DeviceId,
    ConfigPath, Answered, Status. What it is doing goes to the verbose stream (-Verbose). No key or connection string is
    printed.

    Without -ConnectionString the script starts the local IoT Hub emulator and provisions against it (DPS too, with a group
    enrollment it creates), so it runs with no Azure subscription. It runs in pwsh and in the module's own host.

    Export the results as a table: ./Provision-Fleet.ps1 -CsvPath fleet.csv -OutputPath ./configs | Export-Csv results.csv
.EXAMPLE
    dotnet run --project src/IoTHubMqtt.Host -- -File module/examples/Provision-Fleet.ps1 -CsvPath fleet.csv -OutputPath ./configs
.EXAMPLE
    ./Provision-Fleet.ps1 -CsvPath fleet.csv -OutputPath ./configs -ConnectionString $env:IOTHUB_OWNER_CONNECTION_STRING
.EXAMPLE
    ./Provision-Fleet.ps1 -CsvPath fleet.csv -OutputPath ./configs -Dps -IdScope 0ne00ABC123 -GroupKey $env:DPS_GROUP_KEY -ConnectionString $env:IOTHUB_OWNER_CONNECTION_STRING
#>
[CmdletBinding()]
param(
    # The CSV file: a header line, then one device a line.
    [Parameter(Mandatory)] [string] $CsvPath,
    # The folder for the per-device configuration files (created when missing).
    [Parameter(Mandatory)] [string] $OutputPath,
    # A shared access policy connection string of your hub (iothubowner or registryReadWrite + serviceConnect). Default: the emulator.
    [string] $ConnectionString,
    # Register the devices through DPS instead of creating them in the registry.
    [switch] $Dps,
    # With -Dps and a real hub: the DPS ID scope and the enrollment group's key.
    [string] $IdScope,
    [string] $GroupKey,
    [string] $ProvisioningHost = 'global.azure-devices-provisioning.net',
    # Devices created or registered at the same time.
    [int] $ThrottleLimit = 8,
    # Skip the check that each device answers.
    [switch] $SkipCheck
)

# Per-row problems are non-terminating errors; anything else stops the script.

function Write-RowError([int] $Line, [string] $Why) {
    Write-Error -Message "CSV line ${Line}: $Why." -ErrorId CsvRowMalformed -Category InvalidData -TargetObject "line $Line"
}

function Get-CsvFieldCount([string] $Line) {
    # Fields of one CSV line: commas outside quoted text, plus one.
    ($Line -replace '"[^"]*"', '').Split(',').Count
}

function Read-FleetCsv([string] $Path) {
    # Import-Csv would drop a row's extra fields silently: read line by line to name the malformed ones.
    $lines = @(Get-Content -LiteralPath $Path)
    if ($lines.Count -eq 0) { throw "The CSV file '$Path' is empty." }
    $headers = @(($lines[0] | ConvertFrom-Csv -Header (1..64)).PSObject.Properties.Value | Where-Object { $_ })
    if ($headers -notcontains 'DeviceId' -and $headers -notcontains 'SerialNumber') {
        throw "The CSV file '$Path' has no DeviceId or SerialNumber column."
    }
    for ($i = 1; $i -lt $lines.Count; $i++) {
        if (-not $lines[$i].Trim()) { continue }
        $fields = Get-CsvFieldCount $lines[$i]
        if ($fields -ne $headers.Count) {
            Write-RowError ($i + 1) "$fields fields where the header has $($headers.Count)"
            continue
        }
        $row = $lines[$i] | ConvertFrom-Csv -Header $headers
        $id = if ($row.PSObject.Properties['DeviceId'] -and $row.DeviceId) { $row.DeviceId } else { $row.SerialNumber }
        if (-not $id) {
            Write-RowError ($i + 1) 'no device id'
            continue
        }
        $row | Add-Member -NotePropertyName DeviceId -NotePropertyValue $id -Force -PassThru
    }
}

function Write-DeviceConfig([string] $Folder, [string] $DeviceId, [string] $DeviceConnectionString) {
    $invalid = [regex]::Escape(-join ([IO.Path]::GetInvalidFileNameChars() + [char[]]'*?:'))
    $path = Join-Path $Folder (($DeviceId -replace "[$invalid]", '_') + '.json')
    # The file holds the device's key: created readable by its owner only before the key is written.
    $null = New-Item -ItemType File -Path $path -Force
    if (-not $IsWindows) { [IO.File]::SetUnixFileMode($path, [IO.UnixFileMode]'UserRead, UserWrite') }
    [ordered]@{
        deviceId         = $DeviceId
        hostName         = (ConvertFrom-IoTHubConnectionString -ConnectionString $DeviceConnectionString).HostName
        connectionString = $DeviceConnectionString
    } | ConvertTo-Json | Set-Content -LiteralPath $path
    $path
}

$hub = $null
$devicePort = @{}
try {
    if (-not $ConnectionString) {
        $hub = Start-IoTHubEmulator
        $service = $hub | Connect-IoTHubService
        $devicePort = @{ Port = $hub.MqttTlsPort; CaCertificatePath = $hub.CaCertificatePath }
        Write-Verbose "Provisioning against the local emulator ($($hub.HostName))."
    } else {
        $service = Connect-IoTHubService -ConnectionString $ConnectionString
        Write-Verbose "Provisioning against $($service.HostName)."
    }

    $folder = (New-Item -ItemType Directory -Path $OutputPath -Force).FullName
    $rows = @(Read-FleetCsv (Resolve-Path -LiteralPath $CsvPath).ProviderPath)
    Write-Verbose "$($rows.Count) device(s) in $CsvPath."

    # 2. Identities: each item is the device id and its connection string.
    $identities = @()
    if ($Dps) {
        $dpsOptions = @{ ThrottleLimit = $ThrottleLimit }
        if ($hub) {
            $GroupKey = $hub.AddEnrollmentGroup('provision-fleet')
            $dpsOptions += @{ IdScope = $hub.IdScope; ProvisioningHost = 'localhost'; Port = $hub.DpsPort; CaCertificatePath = $hub.CaCertificatePath }
        } else {
            if (-not $IdScope -or -not $GroupKey) { throw '-Dps with -ConnectionString needs -IdScope and -GroupKey.' }
            $dpsOptions += @{ IdScope = $IdScope; ProvisioningHost = $ProvisioningHost }
        }
        $registrations = $rows | ForEach-Object { $_.DeviceId.ToLowerInvariant() } |
            Register-IoTHubDevice -GroupKey $GroupKey @dpsOptions -ErrorAction Continue
        $identities = @($registrations | ForEach-Object { [pscustomobject]@{ DeviceId = $_.DeviceId; Secret = $_.ConnectionString } })
    } else {
        $devices = $rows | New-IoTHubDevice -Connection $service -ThrottleLimit $ThrottleLimit -ErrorAction Continue
        $identities = @($devices | ForEach-Object { [pscustomobject]@{ DeviceId = $_.DeviceId; Secret = $_.ConnectionString } })
    }
    Write-Verbose "$($identities.Count) device(s) provisioned$(if ($Dps) { ' through DPS' })."

    # 3. One configuration file a device, 4. and a check that it answers.
    foreach ($identity in $identities) {
        $configPath = Write-DeviceConfig $folder $identity.DeviceId $identity.Secret
        $answered = $false
        $status = $null
        if (-not $SkipCheck) {
            $fromFile = (Get-Content -LiteralPath $configPath -Raw | ConvertFrom-Json).connectionString
            try {
                $connection = Connect-IoTHub -ConnectionString $fromFile @devicePort -ErrorAction Stop
            } catch {
                # A disabled device, for example, cannot connect: report it and go on with the next.
                $connection = $null
                $status = $_.FullyQualifiedErrorId.Split(',')[0]
            }
            if ($connection) {
                try {
                    Register-IoTHubMethod -Connection $connection -Name 'ping' -ScriptBlock { @{ pong = $_.Payload.nonce } }
                    $nonce = [Guid]::NewGuid().ToString('N')
                    $job = Invoke-IoTHubMethod -Connection $service -DeviceId $identity.DeviceId -Name 'ping' -Payload @{ nonce = $nonce } -Timeout 15 -AsJob
                    Wait-IoTHubMethodCall -Connection $connection -Timeout 20 | Out-Null
                    $answer = $job | Receive-Job -Wait -ErrorAction Continue
                    $job | Remove-Job
                    $status = $answer.Status
                    $answered = $answer.Status -eq 200 -and $answer.Payload.pong -eq $nonce
                } finally {
                    Disconnect-IoTHub -Connection $connection
                }
            }
        }
        [pscustomobject]@{ DeviceId = $identity.DeviceId; ConfigPath = $configPath; Answered = $answered; Status = $status }
    }
} finally {
    if ($hub) { $hub | Stop-IoTHubEmulator -Confirm:$false }
}
