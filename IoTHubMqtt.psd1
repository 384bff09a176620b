@{
    RootModule             = 'IoTHubMqtt.dll'
    ModuleVersion          = '0.1.0'
    CompatiblePSEditions   = @('Core')
    GUID                   = 'd90130cd-81a1-45da-bf7a-128a5fbc7605'
    Author                 = 'IoTHubMqtt contributors'
    CompanyName            = 'IoTHubMqtt contributors'
    Copyright              = '(c) IoTHubMqtt contributors. MIT License.'
    Description            = 'Script Azure IoT Hub devices and fleets over MQTT with no Azure SDK: SAS tokens, telemetry, cloud-to-device messages, direct methods, device twins, DPS provisioning, a local IoT Hub emulator, and ESP32 flashing with nanoFramework.'
    PowerShellVersion      = '7.4'
    # Update-Help and Save-Help fetch IoTHubMqtt_<GUID>_HelpInfo.xml and the help content .zip from here (each release
    # carries them; build.ps1 -Task Package writes them to out/help/).
    HelpInfoURI            = 'https://github.com/iothubmqtt/IoTHubMqtt/releases/latest/download/'
    FormatsToProcess       = @('IoTHubMqtt.format.ps1xml')
    CmdletsToExport        = @(
        'New-IoTHubSasToken'
        'ConvertFrom-IoTHubConnectionString'
        'New-IoTHubDeviceKey'
        'Connect-IoTHub'
        'Disconnect-IoTHub'
        'Send-IoTHubMessage'
        'Receive-IoTHubMessage'
        'Get-IoTHubTwin'
        'Update-IoTHubTwin'
        'Wait-IoTHubDesiredProperty'
        'Register-IoTHubMethod'
        'Wait-IoTHubMethodCall'
        'Start-IoTHubEmulator'
        'Stop-IoTHubEmulator'
        'Publish-NanoFrameworkApp'
        'Get-Esp32Device'
        'Install-Esp32Firmware'
        'Clear-Esp32Flash'
        'Read-Esp32Flash'
        'Start-Esp32Simulator'
        'Stop-Esp32Simulator'
        'Connect-IoTHubService'
        'New-IoTHubDevice'
        'Get-IoTHubDevice'
        'Remove-IoTHubDevice'
        'Import-IoTHubDevice'
        'Export-IoTHubDevice'
        'Register-IoTHubDevice'
        'Invoke-IoTHubMethod'
        'Set-IoTHubDesiredProperty'
        'Send-IoTHubCloudMessage'
        'Receive-IoTHubTelemetry'
        'Receive-IoTHubCloudMessageFeedback'
    )
    FunctionsToExport      = @()
    VariablesToExport      = @()
    AliasesToExport        = @()
    PrivateData            = @{
        PSData = @{
            Tags         = @('IoT', 'IoTHub', 'Azure', 'MQTT', 'DPS', 'ESP32', 'nanoFramework', 'Emulator', 'Linux', 'Windows', 'MacOS', 'PSEdition_Core')
            LicenseUri   = 'https://github.com/iothubmqtt/IoTHubMqtt/blob/main/LICENSE'
            ProjectUri   = 'https://github.com/iothubmqtt/IoTHubMqtt'
            ReleaseNotes = 'See https://github.com/iothubmqtt/IoTHubMqtt/blob/main/README.md#release-notes'
        }
    }
}
