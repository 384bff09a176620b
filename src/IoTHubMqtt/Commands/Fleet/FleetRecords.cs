using System.Collections;
using IoTHubMqtt.Core.Provisioning;
using IoTHubMqtt.Core.Service;
using IoTHubMqtt.Core.Service.Registry;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Fleet;

/// <summary>
/// A device identity in the registry. <see cref="PrimaryKey"/>, <see cref="SecondaryKey"/> and <see cref="ConnectionString"/>
/// are secret: no view shows them and <see cref="ToString"/> leaves them out; a script can still pass them on.
/// </summary>
public sealed class IoTHubDevice
{
    internal IoTHubDevice(ServiceDevice device, string action)
    {
        DeviceId = device.DeviceId;
        HostName = device.HostName;
        Status = device.Status;
        ConnectionState = device.ConnectionState;
        AuthenticationType = device.AuthenticationType;
        ETag = device.ETag;
        LastActivityTime = device.LastActivityTime;
        PrimaryKey = device.PrimaryKey;
        SecondaryKey = device.SecondaryKey;
        PrimaryThumbprint = device.PrimaryThumbprint;
        ConnectionString = device.ConnectionString;
        Action = action;
        DesiredProperties = PowerShellJson.ToPowerShell(device.DesiredProperties);
        ReportedProperties = PowerShellJson.ToPowerShell(device.ReportedProperties);
    }

    public string DeviceId { get; }

    public string HostName { get; }

    /// <summary>enabled or disabled.</summary>
    public string Status { get; }

    public string ConnectionState { get; }

    /// <summary>sas or selfSigned.</summary>
    public string AuthenticationType { get; }

    public string? ETag { get; }

    public DateTimeOffset? LastActivityTime { get; }

    /// <summary>
    /// What New-IoTHubDevice did: Created, Unchanged (it existed and was left as it was) or Updated (-Force); Read for
    /// Get-IoTHubDevice; Exported for Export-IoTHubDevice.
    /// </summary>
    public string Action { get; }

    public string? PrimaryThumbprint { get; }

    /// <summary>The twin's tags: those New-IoTHubDevice applied (null when none), or those Export-IoTHubDevice read.</summary>
    public object? Tags { get; internal set; }

    /// <summary>The twin's desired properties (Export-IoTHubDevice; null otherwise).</summary>
    public object? DesiredProperties { get; }

    /// <summary>The twin's reported properties (Export-IoTHubDevice; null otherwise).</summary>
    public object? ReportedProperties { get; }

    /// <summary>Secret.</summary>
    public string? PrimaryKey { get; }

    /// <summary>Secret.</summary>
    public string? SecondaryKey { get; }

    /// <summary>HostName=…;DeviceId=…;SharedAccessKey=… with the primary key, for Connect-IoTHub or a device's configuration. Secret.</summary>
    public string? ConnectionString { get; }

    public override string ToString() => $"{DeviceId}@{HostName} ({Status})";
}

/// <summary>What Remove-IoTHubDevice -PassThru reports for a device: Removed, or Absent when it was not registered.</summary>
public sealed class IoTHubDeviceRemoval(string deviceId, string hostName, string action)
{
    public string DeviceId { get; } = deviceId;

    public string HostName { get; } = hostName;

    /// <summary>Removed or Absent.</summary>
    public string Action { get; } = action;

    public override string ToString() => $"{DeviceId}: {Action}";
}

/// <summary>What an import job does with each device (the hub's importMode).</summary>
public enum IoTHubImportMode
{
    /// <summary>Create the device; one that exists is left as it is (counted as Unchanged).</summary>
    Create,

    /// <summary>Create the device, or replace an existing one's identity and twin data with the file's.</summary>
    CreateOrUpdate,

    /// <summary>As CreateOrUpdate, but an existing device only if its ETag matches.</summary>
    CreateOrUpdateIfMatchETag,

    /// <summary>Replace an existing device's identity; a missing one is DeviceNotFound.</summary>
    Update,

    /// <summary>As Update, only if the device's ETag matches.</summary>
    UpdateIfMatchETag,

    /// <summary>Remove the device; a missing one is DeviceNotFound.</summary>
    Delete,

    /// <summary>Remove the device only if its ETag matches.</summary>
    DeleteIfMatchETag,
}

/// <summary>What Import-IoTHubDevice did: the hub's import job and how many devices it applied; failed devices are errors.</summary>
public sealed class IoTHubImportResult
{
    internal IoTHubImportResult(ImportJobResult result, string mode)
    {
        JobId = result.Job.JobId;
        Status = result.Job.Status;
        Mode = mode;
        Devices = result.Devices;
        Succeeded = result.Succeeded;
        Unchanged = result.AlreadyExisting;
        Failed = result.Failed.Count;
        StartTime = result.Job.StartTime;
        EndTime = result.Job.EndTime;
    }

    public string JobId { get; }

    /// <summary>The job's final status: completed.</summary>
    public string Status { get; }

    /// <summary>The import mode: Create, CreateOrUpdate, Update, Delete…</summary>
    public string Mode { get; }

    /// <summary>Devices in the file given to the hub.</summary>
    public long Devices { get; }

    /// <summary>Devices the job applied.</summary>
    public long Succeeded { get; }

    /// <summary>Devices that already existed (Create mode), left as they were.</summary>
    public long Unchanged { get; }

    /// <summary>Devices the hub could not apply (each written as an error).</summary>
    public long Failed { get; }

    public DateTimeOffset? StartTime { get; }

    public DateTimeOffset? EndTime { get; }

    /// <summary>How long the hub's job ran.</summary>
    public TimeSpan? Duration => EndTime - StartTime;

    public override string ToString() => $"import job {JobId}: {Status}, {Succeeded} of {Devices} devices";
}

/// <summary>The outcome of a DPS registration. <see cref="DeviceKey"/> and <see cref="ConnectionString"/> are secret.</summary>
public sealed class IoTHubRegistration
{
    internal IoTHubRegistration(DpsRegistrationResult result)
    {
        RegistrationId = result.RegistrationId;
        Status = result.Status;
        Substatus = result.Substatus;
        AssignedHub = result.AssignedHub;
        DeviceId = result.DeviceId;
        ErrorMessage = result.ErrorMessage;
        DeviceKey = result.DeviceKey;
        ConnectionString = result.ConnectionString;
    }

    public string RegistrationId { get; }

    /// <summary>assigned, failed or disabled.</summary>
    public string Status { get; }

    public string? Substatus { get; }

    /// <summary>The host name of the hub DPS assigned the device to.</summary>
    public string? AssignedHub { get; }

    public string? DeviceId { get; }

    public string? ErrorMessage { get; }

    /// <summary>The device's symmetric key (derived from the group key for a group enrollment). Secret.</summary>
    public string DeviceKey { get; }

    /// <summary>A device connection string for the assigned hub, for Connect-IoTHub. Secret.</summary>
    public string? ConnectionString { get; }

    public override string ToString() => $"{RegistrationId}: {Status}{(AssignedHub is null ? "" : $" to {AssignedHub}/{DeviceId}")}";
}

/// <summary>A device's answer to a direct method.</summary>
public sealed class IoTHubMethodResult
{
    internal IoTHubMethodResult(MethodInvocationResult result)
    {
        DeviceId = result.DeviceId;
        MethodName = result.MethodName;
        Status = result.Status;
        PayloadJson = result.Payload?.ToJsonString() ?? "null";
        Payload = PowerShellJson.ToPowerShell(result.Payload);
    }

    public string DeviceId { get; }

    public string MethodName { get; }

    /// <summary>The method's name again, under the name the device side's IoTHubMethodCall gives it.</summary>
    public string Name => MethodName;

    /// <summary>The status the device answered with (200 by convention for success).</summary>
    public int Status { get; }

    /// <summary>The device's payload as objects (like ConvertFrom-Json).</summary>
    public object? Payload { get; }

    /// <summary>The device's payload as JSON text.</summary>
    public string PayloadJson { get; }

    public override string ToString() => $"{DeviceId} {MethodName} -> {Status}";
}

/// <summary>A device twin's desired properties after Set-IoTHubDesiredProperty.</summary>
public sealed class IoTHubDesiredProperties
{
    internal IoTHubDesiredProperties(ServiceTwin twin)
    {
        DeviceId = twin.DeviceId;
        ETag = twin.ETag;
        Version = twin.DesiredVersion;
        Desired = PowerShellJson.ToPowerShell(twin.Desired);
        DesiredJson = twin.Desired.ToJsonString();
    }

    public string DeviceId { get; }

    /// <summary>The twin's ETag: pass it to -ETag for the next conditional patch.</summary>
    public string? ETag { get; }

    /// <summary>The desired properties' $version.</summary>
    public long Version { get; }

    public object? Desired { get; }

    public string DesiredJson { get; }

    public override string ToString() => $"{DeviceId} desired v{Version}";
}

/// <summary>A cloud-to-device message the hub accepted.</summary>
public sealed class IoTHubCloudMessageReceipt
{
    internal IoTHubCloudMessageReceipt(CloudMessageReceipt receipt, string? ack, DateTimeOffset? expiry)
    {
        DeviceId = receipt.DeviceId;
        MessageId = receipt.MessageId;
        Ack = ack ?? "none";
        ExpiryTime = expiry;
    }

    public string DeviceId { get; }

    public string MessageId { get; }

    /// <summary>The delivery feedback requested: none, positive, negative or full.</summary>
    public string Ack { get; }

    public DateTimeOffset? ExpiryTime { get; }

    public override string ToString() => $"{MessageId} -> {DeviceId}";
}

/// <summary>A device-to-cloud message read from the hub.</summary>
public sealed class IoTHubTelemetryMessage
{
    internal IoTHubTelemetryMessage(TelemetryEvent e)
    {
        DeviceId = e.DeviceId;
        SequenceNumber = e.SequenceNumber;
        EnqueuedTime = e.EnqueuedTime;
        BodyBytes = e.Body;
        Body = System.Text.Encoding.UTF8.GetString(e.Body);
        Properties = PropertyTable.From(e.Properties, ignoreCase: true);
        SystemProperties = PropertyTable.From(e.SystemProperties, ignoreCase: true);
        MessageId = new[] { "$.mid", "message-id", "messageId" }.Select(e.SystemProperties.GetValueOrDefault).FirstOrDefault(v => v is not null);
        PartitionId = e.PartitionId;
    }

    /// <summary>The partition of the Event Hub-compatible endpoint the message was read from.</summary>
    public string? PartitionId { get; }

    public string DeviceId { get; }

    public long SequenceNumber { get; }

    public DateTimeOffset EnqueuedTime { get; }

    public string? MessageId { get; }

    /// <summary>The body as UTF-8 text.</summary>
    public string Body { get; }

    public byte[] BodyBytes { get; }

    /// <summary>Application properties.</summary>
    public Hashtable Properties { get; }

    /// <summary>System properties (message id, content type, correlation id…).</summary>
    public Hashtable SystemProperties { get; }

    public override string ToString() => $"{DeviceId} #{SequenceNumber}";
}
