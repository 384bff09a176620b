using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.NanoFramework;

/// <summary>
/// What the firmware in <c>firmware/</c> reads at boot: Wi-Fi credentials, a device connection string or DPS enrollment data,
/// an optional CA bundle and optional tuning. Written to the board by <c>Install-Esp32Firmware -Configuration</c> in the
/// container format of <see cref="DeviceConfigurationFormat"/> (firmware/docs/device-configuration.md). <see cref="ToString"/> never
/// shows a secret.
/// </summary>
public sealed class DeviceConfiguration
{
    public const string DefaultDpsEndpoint = "global.azure-devices-provisioning.net";
    public const int MinTelemetryIntervalSeconds = 1;
    public const int MaxTelemetryIntervalSeconds = 86400;

    public required string WifiSsid { get; init; }

    /// <summary>Secret; empty for an open network.</summary>
    public string WifiPassword { get; init; } = string.Empty;

    /// <summary>A device connection string (secret). Give this or the DPS fields.</summary>
    public string? ConnectionString { get; init; }

    public string? DpsIdScope { get; init; }

    public string? DpsRegistrationId { get; init; }

    /// <summary>The device's (derived) symmetric key. Secret.</summary>
    public string? DpsSymmetricKey { get; init; }

    public string? DpsGlobalEndpoint { get; init; }

    /// <summary>PEM text of the root CA(s) to trust instead of the firmware's built-in roots.</summary>
    public string? CaCertificatePem { get; init; }

    /// <summary>Telemetry interval in seconds until the twin says otherwise; null for the firmware default (60).</summary>
    public int? TelemetryIntervalSeconds { get; init; }

    /// <summary>MQTT/TLS port; null for 8883.</summary>
    public int? Port { get; init; }

    public bool UsesDps => DpsIdScope is not null;

    /// <summary>Checks what the firmware would refuse, with the same rules and clear errors; never echoes a secret.</summary>
    public void Validate()
    {
        if (string.IsNullOrEmpty(WifiSsid) || System.Text.Encoding.UTF8.GetByteCount(WifiSsid) > 32)
        {
            throw Invalid(ErrorIds.DeviceConfigurationInvalidSsid, "The Wi-Fi SSID must be 1 to 32 bytes.", "WifiSsid");
        }

        if (WifiPassword.Length != 0 && (WifiPassword.Length < 8 || WifiPassword.Length > 64))
        {
            throw Invalid(ErrorIds.DeviceConfigurationInvalidWifiPassword, "The Wi-Fi password must be empty (open network) or 8 to 64 characters.", "WifiPassword");
        }

        var dps = DpsIdScope is not null || DpsRegistrationId is not null || DpsSymmetricKey is not null;
        if (ConnectionString is not null && dps)
        {
            throw Invalid(ErrorIds.DeviceConfigurationBothCredentials, "Give either a connection string or DPS settings, not both.", "ConnectionString");
        }

        if (ConnectionString is null && !dps)
        {
            throw Invalid(ErrorIds.DeviceConfigurationNoCredential, "Give a device connection string or DPS id scope, registration id and key.", "ConnectionString");
        }

        if (ConnectionString is not null)
        {
            var cs = IoTHubConnectionString.Parse(ConnectionString);
            if (cs.Kind != ConnectionStringKind.Device || cs.SharedAccessKey is null)
            {
                throw Invalid(ErrorIds.DeviceConfigurationNotDeviceConnectionString, "The firmware needs a device connection string with SharedAccessKey (no policy, module, X.509 or fixed SAS).", "ConnectionString");
            }
        }
        else
        {
            if (string.IsNullOrWhiteSpace(DpsIdScope))
            {
                throw Invalid(ErrorIds.DeviceConfigurationInvalidIdScope, "The DPS id scope is missing.", "DpsIdScope");
            }

            if (string.IsNullOrEmpty(DpsRegistrationId) || DpsRegistrationId.Length > 128 || !DpsRegistrationId.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '.' or '_' or ':'))
            {
                throw Invalid(ErrorIds.DeviceConfigurationInvalidRegistrationId, "The DPS registration id must be 1 to 128 lowercase letters, digits or '-', '.', '_', ':'.", "DpsRegistrationId");
            }

            SharedAccessKeys.Decode(DpsSymmetricKey, "DpsSymmetricKey");
        }

        if (CaCertificatePem is not null && (!CaCertificatePem.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal) || !CaCertificatePem.Contains("-----END CERTIFICATE-----", StringComparison.Ordinal)))
        {
            throw Invalid(ErrorIds.DeviceConfigurationInvalidCaCertificate, "The CA certificate must be PEM text with at least one certificate.", "CaCertificate");
        }

        if (TelemetryIntervalSeconds is < MinTelemetryIntervalSeconds or > MaxTelemetryIntervalSeconds)
        {
            throw Invalid(ErrorIds.DeviceConfigurationInvalidTelemetryInterval, $"The telemetry interval must be {MinTelemetryIntervalSeconds} to {MaxTelemetryIntervalSeconds} seconds.", "TelemetryIntervalSeconds");
        }

        if (Port is < 1 or > 65535)
        {
            throw Invalid(ErrorIds.DeviceConfigurationInvalidPort, "The port must be 1 to 65535.", "Port");
        }
    }

    public override string ToString()
    {
        string target;
        if (UsesDps)
        {
            target = $"DPS {DpsIdScope}/{DpsRegistrationId}";
        }
        else
        {
            try
            {
                var cs = IoTHubConnectionString.Parse(ConnectionString);
                target = $"{cs.HostName}/{cs.DeviceId}";
            }
            catch (IoTHubMqttException)
            {
                target = "(invalid connection string)";
            }
        }

        return $"Wi-Fi '{WifiSsid}', {target}";
    }

    private static IoTHubMqttException Invalid(string errorId, string message, string target) =>
        new(errorId, message, "See firmware/docs/device-configuration.md for the fields the firmware reads.", target);
}
