<#
.SYNOPSIS
    A first tour of IoTHubMqtt.
.DESCRIPTION
    Parses a device connection string, signs a SAS token for it and derives a DPS group-enrollment key.
    Without -ConnectionString it uses a made-up device on a made-up hub; nothing is sent anywhere.
.EXAMPLE
    dotnet run --project src/IoTHubMqtt.Host -- -File module/examples/Quickstart.ps1
.EXAMPLE
    ./Quickstart.ps1 -ConnectionString $env:IOTHUB_DEVICE_CONNECTION_STRING
#>
param(
    # A device connection string of your own hub; its key is never printed.
    [string] $ConnectionString = 'HostName=contoso-hub.azure-devices.net;DeviceId=quickstart-device;SharedAccessKey=cXVpY2tzdGFydC1kZXZpY2Uta2V5LTAxMjM0NTY3OA=='
)

$ErrorActionPreference = 'Stop'

'== 1. Parse the connection string (the key stays hidden)'
$device = ConvertFrom-IoTHubConnectionString -ConnectionString $ConnectionString
$device | Out-Host

'== 2. Sign a SAS token for MQTT (valid 1 hour), as the device would send it as its password'
$token = $device | New-IoTHubSasToken -TimeToLive ([TimeSpan]::FromHours(1))
$expiry = [DateTimeOffset]::FromUnixTimeSeconds([long]($token -replace '^.*&se=(\d+).*$', '$1'))
"MQTT client id : $($device.DeviceId)"
"MQTT user name : $($device.HostName)/$($device.DeviceId)/?api-version=2021-04-12"
"Token for      : $($device.ResourceUri), expires $($expiry.UtcDateTime.ToString('u'))"
"Token length   : $($token.Length) characters (not printed)"

'== 3. Derive per-device keys from a DPS group enrollment key'
$groupKey = '8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=='
'sensor-001', 'sensor-002', 'sensor-003' | New-IoTHubDeviceKey -GroupKey $groupKey | Out-Host

'Done.'
