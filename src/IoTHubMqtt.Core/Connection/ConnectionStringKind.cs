namespace IoTHubMqtt.Core.Connection;

/// <summary>What a connection string identifies.</summary>
public enum ConnectionStringKind
{
    /// <summary><c>HostName;DeviceId;SharedAccessKey|x509</c></summary>
    Device,
    /// <summary><c>HostName;DeviceId;ModuleId;SharedAccessKey|x509</c></summary>
    Module,
    /// <summary><c>HostName;SharedAccessKeyName;SharedAccessKey</c> (iothubowner, service, registryReadWrite …)</summary>
    Policy,
}
