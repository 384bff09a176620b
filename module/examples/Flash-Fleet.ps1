<#
.SYNOPSIS
    Flashes one ESP32 board per device of a provisioned fleet: nanoFramework firmware, the device app and the device's own
    configuration; then waits until every device is connected to the hub.
.DESCRIPTION
    Takes the folder of per-device configuration files that Provision-Fleet.ps1 writes (<deviceId>.json with the device's
    connection string) and a list of ports, one board a device, matched in the order of the device ids (sorted; -DeviceId
    picks and orders them). For each device:
    1. Install-Esp32Firmware writes the firmware package (bootloader, partition table, nanoCLR), the app's deployment image
       and the device's configuration (Wi-Fi, its connection string, optional CA, MQTT port and telemetry interval) to the
       board's config partition, then resets the board into the app. Regions already on the board are skipped.
    2. Once every board is flashed, waits until each device shows up in the hub as connected (Get-IoTHubDevice), at most
       -TimeoutSeconds.
    Writes one result a device: DeviceId, Port, Written (regions written, others were already there), Connected, Seconds.
    A board that cannot be flashed is a non-terminating error naming the device, and the others go on. No key, connection
    string or Wi-Fi password is printed.

    The device app is firmware/IoTHubDevice (build it with the nanoFramework extension; its deployment image comes from
    Publish-NanoFrameworkApp). The service connection for the wait is -Connection, -ConnectionString, or the session's
    current one (Connect-IoTHubService).
.EXAMPLE
    ./Provision-Fleet.ps1 -CsvPath fleet.csv -OutputPath ./configs -ConnectionString $env:IOTHUB_OWNER_CONNECTION_STRING -SkipCheck
    ./Flash-Fleet.ps1 -ConfigPath ./configs -Port /dev/ttyUSB0, /dev/ttyUSB1 -Package ./ESP32_REV3-1.12.0.zip `
        -DeploymentImage ./IoTHubDevice.bin -WifiCredential (Get-Credential -UserName lab-network) `
        -ConnectionString $env:IOTHUB_OWNER_CONNECTION_STRING
.EXAMPLE
    # Against the local emulator: the boards trust its CA and connect to its MQTT port.
    ./Flash-Fleet.ps1 -ConfigPath ./configs -Port COM5, COM6 -Package ./ESP32_C3-1.12.0.zip -DeploymentImage ./IoTHubDevice.bin `
        -WifiCredential $wifi -CaCertificate $hub.CaCertificatePath -MqttPort $hub.MqttTlsPort -Connection ($hub | Connect-IoTHubService)
#>
[CmdletBinding()]
param(
    # The folder of <deviceId>.json files written by Provision-Fleet.ps1.
    [Parameter(Mandatory)] [string] $ConfigPath,
    # One port a device (COM5, /dev/ttyUSB0, socket://host:port, rfc2217://host:port), in the order of the device ids.
    [Parameter(Mandatory)] [string[]] $Port,
    # The nanoFramework firmware package (folder or .zip) for the boards.
    [Parameter(Mandatory)] [string] $Package,
    # The device app's deployment image (Publish-NanoFrameworkApp).
    [string] $DeploymentImage,
    # The Wi-Fi network: user name = SSID, password = the Wi-Fi password.
    [Parameter(Mandatory)] [pscredential] $WifiCredential,
    # Only these devices, in this order (default: every file in -ConfigPath, sorted by device id).
    [string[]] $DeviceId,
    # A CA (PEM file) the devices trust instead of the Azure roots, e.g. the emulator's; and the hub's MQTT/TLS port.
    [string] $CaCertificate,
    [int] $MqttPort,
    # Seconds between telemetry messages (the twin's desired telemetryInterval overrides it).
    [int] $TelemetryInterval,
    # The service side, to see the devices connect: a Connect-IoTHubService connection or a policy connection string.
    [object] $Connection,
    [string] $ConnectionString,
    # How long to wait for all the devices to connect.
    [int] $TimeoutSeconds = 180,
    [int] $Baud = 921600
)

function Write-DeviceError([string] $Id, [System.Management.Automation.ErrorRecord] $Why) {
    # Write-Error is not a core cmdlet: write the ErrorRecord through the script's own cmdlet object.
    $exception = [System.InvalidOperationException]::new("Device ${Id}: $($Why.Exception.Message)", $Why.Exception)
    $PSCmdlet.WriteError([System.Management.Automation.ErrorRecord]::new($exception, $Why.FullyQualifiedErrorId.Split(',')[0], 'WriteError', $Id))
}

$folder = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($ConfigPath)
$files = @{}
foreach ($file in [System.IO.Directory]::GetFiles($folder, '*.json')) {
    $document = [System.Text.Json.JsonDocument]::Parse([System.IO.File]::ReadAllText($file))
    try {
        $root = $document.RootElement
        $files[$root.GetProperty('deviceId').GetString()] = $root.GetProperty('connectionString').GetString()
    } finally {
        $document.Dispose()
    }
}
if ($DeviceId) {
    $ids = @($DeviceId)
} else {
    $sorted = [System.Collections.Generic.List[string]]::new([string[]]@($files.Keys))
    $sorted.Sort([StringComparer]::Ordinal)
    $ids = @($sorted)
}
foreach ($id in $ids) {
    if (-not $files.ContainsKey($id)) { throw "No configuration file for device '$id' in $ConfigPath." }
}
if ($ids.Count -ne $Port.Count) {
    throw "$($ids.Count) device(s) but $($Port.Count) port(s): give one port a device (or pick the devices with -DeviceId)."
}

$service = @{}
if ($Connection) { $service.Connection = $Connection }
elseif ($ConnectionString) { $service.Connection = Connect-IoTHubService -ConnectionString $ConnectionString }

# 1. Flash every board.
$flashed = @()
for ($i = 0; $i -lt $ids.Count; $i++) {
    $id = $ids[$i]
    $config = @{ WifiCredential = $WifiCredential; ConnectionString = $files[$id] }
    if ($CaCertificate) { $config.CaCertificate = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($CaCertificate) }
    if ($MqttPort) { $config.MqttPort = $MqttPort }
    if ($TelemetryInterval) { $config.TelemetryInterval = $TelemetryInterval }
    $install = @{ Port = $Port[$i]; Package = $Package; Configuration = $config; Baud = $Baud }
    if ($DeploymentImage) { $install.DeploymentImage = $DeploymentImage }
    "Flashing $id on $($Port[$i])."
    try {
        $regions = @(Install-Esp32Firmware @install -ErrorAction Stop)
        $written = @($regions | Where-Object { "$($_.Status)" -eq 'Written' }).Count
        $flashed += [pscustomobject]@{ DeviceId = $id; Port = $Port[$i]; Written = $written; Started = [DateTime]::UtcNow }
    } catch {
        Write-DeviceError $id $_
    }
}

# 2. Wait until each flashed device is connected to the hub.
$deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
$pending = [System.Collections.Generic.List[object]]::new()
foreach ($board in $flashed) { $pending.Add($board) }
$connectedAt = @{}
while ($pending.Count -gt 0 -and [DateTime]::UtcNow -lt $deadline) {
    foreach ($board in @($pending)) {
        $device = Get-IoTHubDevice -DeviceId $board.DeviceId @service -ErrorAction SilentlyContinue
        if ($device.ConnectionState -eq 'Connected') {
            $connectedAt[$board.DeviceId] = [DateTime]::UtcNow
            [void]$pending.Remove($board)
        }
    }
    if ($pending.Count -gt 0) { [System.Threading.Thread]::Sleep(1000) }
}

foreach ($board in $flashed) {
    $connected = $connectedAt.ContainsKey($board.DeviceId)
    [pscustomobject]@{
        DeviceId = $board.DeviceId
        Port = $board.Port
        Written = $board.Written
        Connected = $connected
        Seconds = if ($connected) { [Math]::Round(($connectedAt[$board.DeviceId] - $board.Started).TotalSeconds, 1) } else { $null }
    }
}
