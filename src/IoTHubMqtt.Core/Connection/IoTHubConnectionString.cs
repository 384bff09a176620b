using System.Text;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Connection;

/// <summary>
/// A parsed IoT Hub connection string: device, module or shared-access-policy.
/// Field names are case-sensitive and order-free; values may contain '=' (base64 padding).
/// <see cref="ToString"/> never shows the key; <see cref="ToConnectionString"/> rebuilds the secret string on request.
/// </summary>
public sealed class IoTHubConnectionString
{
    public const string HostNameField = "HostName";
    public const string DeviceIdField = "DeviceId";
    public const string ModuleIdField = "ModuleId";
    public const string SharedAccessKeyNameField = "SharedAccessKeyName";
    public const string SharedAccessKeyField = "SharedAccessKey";
    public const string SharedAccessSignatureField = "SharedAccessSignature";
    public const string GatewayHostNameField = "GatewayHostName";
    public const string X509Field = "x509";

    private static readonly string[] KnownFields =
    [
        HostNameField, DeviceIdField, ModuleIdField, SharedAccessKeyNameField, SharedAccessKeyField,
        SharedAccessSignatureField, GatewayHostNameField, X509Field,
    ];

    private IoTHubConnectionString(string hostName)
    {
        HostName = hostName;
    }

    public ConnectionStringKind Kind { get; private init; }

    /// <summary>Full host name, e.g. <c>myhub.azure-devices.net</c>.</summary>
    public string HostName { get; }

    /// <summary>The hub name: the first label of <see cref="HostName"/>.</summary>
    public string HubName => HostName.Split('.')[0];

    public string? DeviceId { get; private init; }

    public string? ModuleId { get; private init; }

    public string? SharedAccessKeyName { get; private init; }

    /// <summary>Base64 key. Secret: never logged.</summary>
    public string? SharedAccessKey { get; private init; }

    /// <summary>A ready SAS token given in the string instead of a key. Secret: never logged.</summary>
    public string? SharedAccessSignature { get; private init; }

    public string? GatewayHostName { get; private init; }

    /// <summary>True when the string says <c>x509=true</c>: the device authenticates with a client certificate.</summary>
    public bool UsesX509 { get; private init; }

    /// <summary>The host a client connects to: the gateway when one is named, otherwise the hub.</summary>
    public string ConnectHostName => GatewayHostName ?? HostName;

    /// <summary>The SAS resource this string's credentials sign: <c>{hub}/devices/{d}[/modules/{m}]</c> or <c>{hub}</c> for a policy.</summary>
    public string ResourceUri => Kind switch
    {
        ConnectionStringKind.Device => SasResource.ForDevice(HostName, DeviceId!),
        ConnectionStringKind.Module => SasResource.ForModule(HostName, DeviceId!, ModuleId!),
        _ => HostName,
    };

    /// <summary>Parses a connection string, throwing <see cref="IoTHubMqttException"/> with a stable ErrorId on bad input.</summary>
    public static IoTHubConnectionString Parse(string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw Invalid(ErrorIds.ConnectionStringEmpty, "The connection string is empty.", null);
        }

        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var rawPart in connectionString.Split(';'))
        {
            var part = rawPart.Trim();
            if (part.Length == 0)
            {
                continue; // a trailing ';' is common and harmless
            }

            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw Invalid(ErrorIds.ConnectionStringMalformedField, $"A connection string field is not of the form Name=Value (field {SafeFieldName(part, eq)}).", null);
            }

            var name = part[..eq].Trim();
            var value = part[(eq + 1)..].Trim();
            var known = Array.Find(KnownFields, k => string.Equals(k, name, StringComparison.Ordinal))
                ?? Array.Find(KnownFields, k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase) && k == X509Field);
            if (known is null)
            {
                var hint = Array.Find(KnownFields, k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
                throw Invalid(ErrorIds.ConnectionStringUnknownField,
                    hint is null
                        ? $"The connection string has an unknown field '{Printable(name)}'."
                        : $"The connection string has an unknown field '{Printable(name)}'; field names are case-sensitive: did you mean '{hint}'?",
                    Printable(name));
            }

            if (!fields.TryAdd(known, value))
            {
                throw Invalid(ErrorIds.ConnectionStringDuplicateField, $"The connection string names the field '{known}' more than once.", known);
            }

            if (value.Length == 0)
            {
                throw Invalid(ErrorIds.ConnectionStringEmptyField, $"The connection string field '{known}' has no value.", known);
            }
        }

        if (fields.Count == 0)
        {
            throw Invalid(ErrorIds.ConnectionStringEmpty, "The connection string is empty.", null);
        }

        if (!fields.TryGetValue(HostNameField, out var host))
        {
            throw Invalid(ErrorIds.ConnectionStringMissingHostName, "The connection string has no HostName field.", HostNameField);
        }

        ValidateHostName(host, HostNameField);
        fields.TryGetValue(DeviceIdField, out var deviceId);
        fields.TryGetValue(ModuleIdField, out var moduleId);
        fields.TryGetValue(SharedAccessKeyNameField, out var keyName);
        fields.TryGetValue(SharedAccessKeyField, out var key);
        fields.TryGetValue(SharedAccessSignatureField, out var sas);
        fields.TryGetValue(GatewayHostNameField, out var gateway);
        var x509 = false;
        if (fields.TryGetValue(X509Field, out var x509Text))
        {
            if (!bool.TryParse(x509Text, out x509))
            {
                throw Invalid(ErrorIds.ConnectionStringInvalidX509, "The connection string field 'x509' must be 'true' or 'false'.", X509Field);
            }
        }

        if (gateway is not null)
        {
            ValidateHostName(gateway, GatewayHostNameField);
        }

        if (moduleId is not null && deviceId is null)
        {
            throw Invalid(ErrorIds.ConnectionStringModuleWithoutDevice, "The connection string names a ModuleId but no DeviceId.", ModuleIdField);
        }

        ConnectionStringKind kind;
        if (deviceId is not null)
        {
            IdentityValidator.ThrowIfInvalidDeviceId(deviceId);
            if (moduleId is not null)
            {
                IdentityValidator.ThrowIfInvalidModuleId(moduleId);
            }

            kind = moduleId is null ? ConnectionStringKind.Device : ConnectionStringKind.Module;
            var credentials = (key is null ? 0 : 1) + (sas is null ? 0 : 1) + (x509 ? 1 : 0);
            if (credentials == 0)
            {
                throw Invalid(ErrorIds.ConnectionStringMissingCredential,
                    "The connection string has no credential: it needs SharedAccessKey, SharedAccessSignature or x509=true.", SharedAccessKeyField);
            }

            if (credentials > 1)
            {
                throw Invalid(ErrorIds.ConnectionStringConflictingCredentials,
                    "The connection string has more than one credential: use only one of SharedAccessKey, SharedAccessSignature and x509=true.", SharedAccessKeyField);
            }
        }
        else
        {
            kind = ConnectionStringKind.Policy;
            if (keyName is null)
            {
                throw Invalid(ErrorIds.ConnectionStringMissingDeviceId,
                    "The connection string has neither a DeviceId (device string) nor a SharedAccessKeyName (policy string).", DeviceIdField);
            }

            if (key is null && sas is null)
            {
                throw Invalid(ErrorIds.ConnectionStringMissingCredential, "The policy connection string has no SharedAccessKey.", SharedAccessKeyField);
            }

            if (x509)
            {
                throw Invalid(ErrorIds.ConnectionStringConflictingCredentials, "A policy connection string cannot use x509=true.", X509Field);
            }
        }

        if (key is not null)
        {
            SharedAccessKeys.Decode(key, SharedAccessKeyField);
        }

        return new IoTHubConnectionString(host)
        {
            Kind = kind,
            DeviceId = deviceId,
            ModuleId = moduleId,
            SharedAccessKeyName = keyName,
            SharedAccessKey = key,
            SharedAccessSignature = sas,
            GatewayHostName = gateway,
            UsesX509 = x509,
        };
    }

    /// <summary>Builds a device connection string (for a device created in the registry or by DPS).</summary>
    public static IoTHubConnectionString ForDevice(string hostName, string deviceId, string sharedAccessKey, string? moduleId = null)
    {
        var text = new StringBuilder().Append(HostNameField).Append('=').Append(hostName)
            .Append(';').Append(DeviceIdField).Append('=').Append(deviceId);
        if (moduleId is not null)
        {
            text.Append(';').Append(ModuleIdField).Append('=').Append(moduleId);
        }

        text.Append(';').Append(SharedAccessKeyField).Append('=').Append(sharedAccessKey);
        return Parse(text.ToString());
    }

    /// <summary>The secret connection string, rebuilt in canonical order. Only for callers that need to hand it on.</summary>
    public string ToConnectionString()
    {
        var text = new StringBuilder();
        void Add(string name, string? value)
        {
            if (value is null)
            {
                return;
            }

            if (text.Length > 0)
            {
                text.Append(';');
            }

            text.Append(name).Append('=').Append(value);
        }

        Add(HostNameField, HostName);
        Add(DeviceIdField, DeviceId);
        Add(ModuleIdField, ModuleId);
        Add(SharedAccessKeyNameField, SharedAccessKeyName);
        Add(SharedAccessKeyField, SharedAccessKey);
        Add(SharedAccessSignatureField, SharedAccessSignature);
        Add(GatewayHostNameField, GatewayHostName);
        if (UsesX509)
        {
            Add(X509Field, "true");
        }

        return text.ToString();
    }

    /// <summary>A safe description: host and identity, never the credential.</summary>
    public override string ToString() => Kind switch
    {
        ConnectionStringKind.Device => $"{HostName}/{DeviceId}",
        ConnectionStringKind.Module => $"{HostName}/{DeviceId}/{ModuleId}",
        _ => $"{HostName} ({SharedAccessKeyName})",
    };

    private static void ValidateHostName(string host, string field)
    {
        if (Uri.CheckHostName(host) is UriHostNameType.Unknown or UriHostNameType.Basic)
        {
            throw Invalid(ErrorIds.ConnectionStringInvalidHostName, $"The connection string field '{field}' is not a valid host name.", field);
        }
    }

    private static string SafeFieldName(string part, int eq)
    {
        // A field with no '=' could be a pasted key: show only its length, not its text.
        return eq < 0 ? $"of {part.Length} characters" : "with an empty name";
    }

    // Field names are not secret, but a broken string can put key material where a name should be:
    // only a plain word of letters is echoed back.
    private static string Printable(string name) =>
        name.Length is > 0 and <= 40 && name.All(char.IsAsciiLetter) ? name : $"<{name.Length} characters>";

    private static IoTHubMqttException Invalid(string errorId, string message, object? target) =>
        new(errorId, message,
            "Copy the connection string again from the portal or 'az iot hub device-identity connection-string show'.", target);
}
