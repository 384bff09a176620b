using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Net;
using System.Security;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.NanoFramework;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>
/// Turns Install-Esp32Firmware -Configuration (a hashtable, or any object with those properties such as a fleet row or
/// ConvertFrom-Json output) into the device configuration the firmware reads at boot, validated with the firmware's rules.
/// Secrets may be SecureStrings or PSCredentials; they are never part of an error message.
/// </summary>
internal static class Esp32DeviceConfigurationReader
{
    /// <summary>The keys, case-insensitive, with their aliases.</summary>
    private static readonly Dictionary<string, string> Keys = new(StringComparer.OrdinalIgnoreCase)
    {
        ["WifiSsid"] = "WifiSsid",
        ["Ssid"] = "WifiSsid",
        ["WifiPassword"] = "WifiPassword",
        ["WifiCredential"] = "WifiCredential",
        ["ConnectionString"] = "ConnectionString",
        ["IdScope"] = "IdScope",
        ["DpsIdScope"] = "IdScope",
        ["RegistrationId"] = "RegistrationId",
        ["SymmetricKey"] = "SymmetricKey",
        ["GlobalEndpoint"] = "GlobalEndpoint",
        ["CaCertificate"] = "CaCertificate",
        ["TelemetryInterval"] = "TelemetryInterval",
        ["MqttPort"] = "MqttPort",
    };

    public const string KeyList = "WifiSsid, WifiPassword or WifiCredential, ConnectionString or IdScope + RegistrationId + SymmetricKey (+ GlobalEndpoint), CaCertificate, TelemetryInterval, MqttPort";

    /// <summary>Reads and validates; <paramref name="resolvePath"/> turns a PowerShell path (of -CaCertificate) into a file path.</summary>
    public static DeviceConfiguration Read(object input, Func<string, string> resolvePath)
    {
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        var value = input is PSObject pso ? pso.BaseObject : input;
        if (value is IDictionary table)
        {
            foreach (DictionaryEntry entry in table)
            {
                var name = Unwrap(entry.Key)?.ToString() ?? string.Empty;
                if (!Keys.TryGetValue(name, out var key))
                {
                    throw Invalid(ErrorIds.Esp32ConfigurationUnknownKey, $"-Configuration has an unknown key '{name}'.", $"Use {KeyList}.", name);
                }

                values[key] = Unwrap(entry.Value);
            }
        }
        else if (value is string or null || value.GetType().IsPrimitive)
        {
            throw Invalid(ErrorIds.Esp32ConfigurationInvalid, "-Configuration takes a hashtable or an object with configuration properties.", $"Use @{{ WifiSsid = 'lab'; WifiPassword = $password; ConnectionString = $cs }} with {KeyList}.", null);
        }
        else
        {
            // An object (a fleet row, ConvertFrom-Json output): the properties it has that are configuration keys; others are its own business.
            foreach (var property in PSObject.AsPSObject(input).Properties)
            {
                if (Keys.TryGetValue(property.Name, out var key) && property.IsGettable)
                {
                    values[key] = Unwrap(property.Value);
                }
            }
        }

        var ssid = Text(values, "WifiSsid");
        var password = Secret(values, "WifiPassword");
        if (Unwrap(values.GetValueOrDefault("WifiCredential")) is { } credentialValue)
        {
            if (credentialValue is not PSCredential credential)
            {
                throw Invalid(ErrorIds.Esp32ConfigurationInvalid, "WifiCredential must be a PSCredential (user name = SSID).", "Use Get-Credential -UserName <ssid>, or WifiSsid and WifiPassword.", "WifiCredential");
            }

            if (ssid is not null || password is not null)
            {
                throw Invalid(ErrorIds.Esp32ConfigurationInvalid, "Give WifiCredential or WifiSsid/WifiPassword, not both.", null, "WifiCredential");
            }

            ssid = credential.UserName;
            password = credential.GetNetworkCredential().Password;
        }

        string? ca = null;
        if (Text(values, "CaCertificate") is { } caText)
        {
            if (caText.Contains("-----BEGIN", StringComparison.Ordinal))
            {
                ca = caText;
            }
            else
            {
                var path = resolvePath(caText);
                if (!File.Exists(path))
                {
                    throw new IoTHubMqttException(ErrorIds.Esp32ConfigurationCaNotFound, $"The CA certificate file '{caText}' does not exist.", "Give the path of a PEM file, or the PEM text.", caText);
                }

                ca = File.ReadAllText(path);
            }
        }

        var configuration = new DeviceConfiguration
        {
            WifiSsid = ssid ?? throw Invalid(ErrorIds.DeviceConfigurationInvalidSsid, "-Configuration has no WifiSsid.", "Add WifiSsid (and WifiPassword) or WifiCredential.", "WifiSsid"),
            WifiPassword = password ?? string.Empty,
            ConnectionString = Secret(values, "ConnectionString"),
            DpsIdScope = Text(values, "IdScope"),
            DpsRegistrationId = Text(values, "RegistrationId"),
            DpsSymmetricKey = Secret(values, "SymmetricKey"),
            DpsGlobalEndpoint = Text(values, "GlobalEndpoint"),
            CaCertificatePem = ca,
            TelemetryIntervalSeconds = Number(values, "TelemetryInterval"),
            Port = Number(values, "MqttPort"),
        };
        if (configuration.DpsIdScope is null && (configuration.DpsRegistrationId is not null || configuration.DpsSymmetricKey is not null) && configuration.ConnectionString is null)
        {
            throw Invalid(ErrorIds.DeviceConfigurationInvalidIdScope, "RegistrationId and SymmetricKey need the DPS IdScope.", "Add IdScope.", "IdScope");
        }

        configuration.Validate();
        return configuration;
    }

    private static object? Unwrap(object? value) => value is PSObject pso ? pso.BaseObject : value;

    private static string? Text(Dictionary<string, object?> values, string key) => values.GetValueOrDefault(key) switch
    {
        null => null,
        string s => s.Length == 0 ? null : s,
        SecureString or PSCredential => throw Invalid(ErrorIds.Esp32ConfigurationInvalid, $"{key} is not a secret; give it as text.", null, key),
        var other => Convert.ToString(other, CultureInfo.InvariantCulture),
    };

    private static string? Secret(Dictionary<string, object?> values, string key) => values.GetValueOrDefault(key) switch
    {
        null => null,
        SecureString secure => new NetworkCredential(string.Empty, secure).Password,
        PSCredential credential => credential.GetNetworkCredential().Password,
        string s => s.Length == 0 ? null : s,
        _ => throw Invalid(ErrorIds.Esp32ConfigurationInvalid, $"{key} must be a string or a SecureString.", null, key),
    };

    private static int? Number(Dictionary<string, object?> values, string key)
    {
        var value = values.GetValueOrDefault(key);
        if (value is null)
        {
            return null;
        }

        try
        {
            return LanguagePrimitives.ConvertTo<int>(value);
        }
        catch (PSInvalidCastException)
        {
            throw Invalid(ErrorIds.Esp32ConfigurationInvalid, $"{key} must be a whole number.", null, key);
        }
    }

    private static IoTHubMqttException Invalid(string errorId, string message, string? action, object? target) =>
        new(errorId, message, action, target);
}
