namespace IoTHubMqtt.Core.Connection;

/// <summary>The resource URIs a SAS token signs (FACTS: "SAS token").</summary>
public static class SasResource
{
    public static string ForDevice(string hostName, string deviceId) => $"{hostName}/devices/{deviceId}";

    public static string ForModule(string hostName, string deviceId, string moduleId) => $"{hostName}/devices/{deviceId}/modules/{moduleId}";

    /// <summary>Service-side policy tokens sign the hub host name itself.</summary>
    public static string ForHub(string hostName) => hostName;

    /// <summary>DPS registration: <c>{idScope}/registrations/{registrationId}</c>, signed with policy name <c>registration</c>.</summary>
    public static string ForDpsRegistration(string idScope, string registrationId) => $"{idScope}/registrations/{registrationId}";

    /// <summary>The policy name DPS expects on a device registration token.</summary>
    public const string DpsRegistrationPolicy = "registration";
}
