namespace IoTHubMqtt.Commands.Device;

/// <summary>A direct method call the device answered.</summary>
public sealed class IoTHubMethodCall
{
    public required string DeviceId { get; init; }

    public required string Name { get; init; }

    /// <summary>The method's name again, under the name the service side's IoTHubMethodResult gives it.</summary>
    public string MethodName => Name;

    public required string RequestId { get; init; }

    /// <summary>The request payload, parsed from JSON.</summary>
    public object? Payload { get; init; }

    public int Status { get; set; }

    /// <summary>The JSON the device answered with.</summary>
    public string? Response { get; set; }

    public string? Error { get; set; }

    public DateTimeOffset ReceivedAt { get; init; }

    public TimeSpan Duration { get; set; }

    public override string ToString() => $"{Name} -> {Status}";
}
