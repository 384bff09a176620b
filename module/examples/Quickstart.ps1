<#
.SYNOPSIS
    A first tour of IoTHubMqtt: a device and its hub, end to end.
.DESCRIPTION
    Without parameters, starts the local IoT Hub emulator, creates a device, connects it over MQTT/TLS, sends
    telemetry and reads it back, receives a cloud-to-device message, answers a direct method and patches the twin,
    narrating each step (Write-Host) and showing what comes back. Nothing leaves this machine.

    With -ConnectionString, the same device steps run against a real IoT hub. Add -ServiceConnectionString (a policy
    with service connect rights on the same hub, e.g. iothubowner) to also invoke the method and push a desired
    property from this script; cloud-to-device send and telemetry read need the hub's AMQP endpoint and are skipped.
.EXAMPLE
    dotnet run --project src/IoTHubMqtt.Host -- -File module/examples/Quickstart.ps1
.EXAMPLE
    ./Quickstart.ps1 -ConnectionString $env:IOTHUB_DEVICE_CONNECTION_STRING -ServiceConnectionString $env:IOTHUB_CONNECTION_STRING
#>
[CmdletBinding()]
param(
    # A device connection string of your own hub; its key is never printed.
    [string] $ConnectionString,

    # A service policy connection string of the same hub, to play the service side against a real hub.
    [string] $ServiceConnectionString
)

$ErrorActionPreference = 'Stop'
$hub = $null
$service = $null
$conn = $null
try {
    if ($ConnectionString) {
        Write-Host '== Connecting to your hub'
        $conn = Connect-IoTHub -ConnectionString $ConnectionString
        if ($ServiceConnectionString) { $service = Connect-IoTHubService -ConnectionString $ServiceConnectionString }
    }
    else {
        Write-Host '== Starting the local IoT Hub emulator'
        $hub = Start-IoTHubEmulator
        $hub | Select-Object HostName, MqttTlsPort, HttpsPort, CaCertificatePath | Format-List | Out-Host
        $service = $hub | Connect-IoTHubService

        Write-Host '== Creating the device quickstart-device in the registry'
        $device = New-IoTHubDevice -DeviceId 'quickstart-device'
        $device | Out-Host

        Write-Host '== Connecting it over MQTT/TLS with a SAS token made from its key'
        $endpoint = @{ Port = $hub.MqttTlsPort; CaCertificatePath = $hub.CaCertificatePath }
        $conn = Connect-IoTHub -ConnectionString $device.ConnectionString @endpoint
    }
    $conn | Out-Host
    $deviceId = $conn.DeviceId

    Write-Host '== Sending three telemetry messages (QoS 1, each acknowledged by the hub)'
    1..3 | ForEach-Object { [pscustomobject]@{ sequence = $_; temperature = 20 + $_ / 2 } } |
        Send-IoTHubMessage -Property @{ source = 'quickstart' } -PassThru | Out-Host
    if ($hub) {
        Write-Host '== Reading them back as the service sees them'
        Receive-IoTHubTelemetry -DeviceId $deviceId -Count 3 -Timeout 30 |
            Select-Object EnqueuedTime, @{ Name = 'Telemetry'; Expression = { $_.Body } } | Out-Host
    }

    Write-Host '== Cloud-to-device message'
    if ($hub) {
        Send-IoTHubCloudMessage -DeviceId $deviceId -Message 'turn on the fan' -Property @{ kind = 'command' } | Out-Null
        $message = Receive-IoTHubMessage -Timeout 30
    }
    else {
        Write-Host 'Waiting 10 s for a message sent to this device (from the portal or the CLI)...'
        $message = Receive-IoTHubMessage -Timeout 10 -ErrorAction Continue
    }
    $message | Select-Object MessageId, Body, @{ Name = 'Kind'; Expression = { $_.Properties['kind'] } } | Format-List | Out-Host

    Write-Host '== Direct method: the device registers a handler and answers a call'
    Register-IoTHubMethod -Name reboot -ScriptBlock { param($call) [ordered]@{ rebooting = $true; delaySeconds = $call.Payload.delay } }
    if ($service) {
        $job = Invoke-IoTHubMethod -DeviceId $deviceId -Name reboot -Payload @{ delay = 5 } -AsJob
        Wait-IoTHubMethodCall -Name reboot -Timeout 30 | Out-Host
        $answer = $job | Receive-Job -Wait
        $job | Remove-Job
        Write-Host "The service got status $($answer.Status) and payload $($answer.Payload | ConvertTo-Json -Compress)"
    }
    else {
        Write-Host 'Waiting 10 s for a call of method reboot...'
        Wait-IoTHubMethodCall -Name reboot -Timeout 10 -ErrorAction Continue | Out-Host
    }

    Write-Host '== Twin: report properties, receive a desired change'
    Update-IoTHubTwin @{ firmwareVersion = '1.0.0'; sensor = @{ model = 'BME280'; ok = $true } } | Out-Null
    if ($service) {
        Set-IoTHubDesiredProperty -DeviceId $deviceId -Property @{ telemetryInterval = 30 } | Out-Null
        $change = Wait-IoTHubDesiredProperty -Name telemetryInterval -Timeout 30
        Write-Host "Desired telemetryInterval is now $($change.Patch.telemetryInterval) s (version $($change.Version))"
        Update-IoTHubTwin @{ telemetryInterval = $change.Patch.telemetryInterval } | Out-Null
    }
    (Get-IoTHubTwin).Reported | ConvertTo-Json -Depth 5 | Out-Host

    Write-Host 'Done.'
}
finally {
    if ($conn) { $conn | Disconnect-IoTHub }
    if ($hub) { $hub | Stop-IoTHubEmulator }
}
