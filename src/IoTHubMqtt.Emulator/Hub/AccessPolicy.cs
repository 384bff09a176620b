namespace IoTHubMqtt.Emulator.Hub;

/// <summary>Rights of a shared access policy (https://learn.microsoft.com/azure/iot-hub/authenticate-authorize-sas).</summary>
[Flags]
internal enum HubPermissions
{
    None = 0,
    RegistryRead = 1,
    RegistryWrite = 2,
    ServiceConnect = 4,
    DeviceConnect = 8,
    All = RegistryRead | RegistryWrite | ServiceConnect | DeviceConnect,
}

/// <summary>A hub-level shared access policy with its two keys.</summary>
internal sealed record AccessPolicy(string Name, string PrimaryKey, string SecondaryKey, HubPermissions Permissions)
{
    public override string ToString() => $"Policy {Name} ({Permissions})";
}
