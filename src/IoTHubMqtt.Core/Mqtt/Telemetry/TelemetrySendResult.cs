namespace IoTHubMqtt.Core.Mqtt;

/// <summary>The outcome of one telemetry publish: acknowledged by the hub (PUBACK) or not.</summary>
public sealed record TelemetrySendResult(string? MessageId, int BodyLength, DateTimeOffset AcknowledgedAt, int Attempts);
