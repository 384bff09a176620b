using System.Globalization;
using System.Text;

namespace IoTHubMqtt.Core.Mqtt;

/// <summary>A cloud-to-device message as the device receives it. Complete it (PUBACK) once it is handled.</summary>
public sealed class CloudToDeviceMessage
{
    private readonly Func<CancellationToken, Task>? complete;
    private int completed;

    public CloudToDeviceMessage(string topic, byte[] body, IReadOnlyDictionary<string, string?> properties, Func<CancellationToken, Task>? complete)
    {
        Topic = topic;
        Body = body;
        this.complete = complete;
        var application = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (name, value) in properties)
        {
            switch (name)
            {
                case PropertyBag.MessageId: MessageId = value; break;
                case PropertyBag.CorrelationId: CorrelationId = value; break;
                case PropertyBag.UserId: UserId = value; break;
                case PropertyBag.ContentType: ContentType = value; break;
                case PropertyBag.ContentEncoding: ContentEncoding = value; break;
                case PropertyBag.To: To = value; break;
                case PropertyBag.ExpiryTime: ExpiryTime = ParseTime(value); break;
                case PropertyBag.CreationTime: CreationTime = ParseTime(value); break;
                default:
                    if (name.StartsWith("$.", StringComparison.Ordinal) || name.StartsWith("iothub-", StringComparison.Ordinal))
                    {
                        SystemProperties[name] = value;
                    }
                    else
                    {
                        application[name] = value;
                    }

                    break;
            }
        }

        Properties = application;
    }

    public string Topic { get; }

    public byte[] Body { get; }

    /// <summary>The body as UTF-8 text.</summary>
    public string BodyText => Encoding.UTF8.GetString(Body);

    public string? MessageId { get; }

    public string? CorrelationId { get; }

    public string? UserId { get; }

    public string? ContentType { get; }

    public string? ContentEncoding { get; }

    public string? To { get; }

    public DateTimeOffset? ExpiryTime { get; }

    public DateTimeOffset? CreationTime { get; }

    public IReadOnlyDictionary<string, string?> Properties { get; }

    /// <summary>Other system properties the hub added (names starting with <c>$.</c> or <c>iothub-</c>).</summary>
    public Dictionary<string, string?> SystemProperties { get; } = new(StringComparer.Ordinal);

    public DateTimeOffset ReceivedAt { get; init; } = DateTimeOffset.UtcNow;

    public bool IsCompleted => Volatile.Read(ref completed) != 0;

    /// <summary>Acknowledges the message (PUBACK); the hub then removes it from the device's queue. Idempotent.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref completed, 1) == 0 && complete is not null)
        {
            await complete(cancellationToken).ConfigureAwait(false);
        }
    }

    public override string ToString() => $"C2D {MessageId ?? "(no id)"} {Body.Length} bytes";

    private static DateTimeOffset? ParseTime(string? value) =>
        DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time) ? time : null;
}
