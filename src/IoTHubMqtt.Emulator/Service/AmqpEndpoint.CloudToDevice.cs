using System.Globalization;
using System.Text;
using Amqp;
using Amqp.Framing;
using Amqp.Listener;
using IoTHubMqtt.Emulator.Hub;

namespace IoTHubMqtt.Emulator.Service;

/// <summary>The hub's own AMQP nodes: C2D send on <c>/messages/devicebound</c> and delivery feedback on <c>/messages/servicebound/feedback</c>.</summary>
internal sealed partial class AmqpEndpoint
{
    /// <summary>Receives C2D messages addressed <c>/devices/{id}/messages/devicebound</c> and queues them.</summary>
    private sealed class CloudToDeviceSink(AmqpEndpoint owner) : LinkEndpoint
    {
        public override void OnMessage(MessageContext messageContext)
        {
            var message = messageContext.Message;
            var to = message.Properties?.To ?? "";
            var parts = to.Trim('/').Split('/');
            if (parts.Length != 4 || parts[0] != "devices" || parts[2] != "messages" || !string.Equals(parts[3], "devicebound", StringComparison.OrdinalIgnoreCase))
            {
                messageContext.Complete(new Error(ErrorCode.InvalidField) { Description = "The 'to' property must be /devices/{deviceId}/messages/devicebound." });
                return;
            }

            var body = message.Body switch
            {
                byte[] bytes => bytes,
                string text => Encoding.UTF8.GetBytes(text),
                null => [],
                _ => Encoding.UTF8.GetBytes(message.Body.ToString() ?? ""),
            };
            var properties = new Dictionary<string, string>(StringComparer.Ordinal);
            string? ack = null;
            if (message.ApplicationProperties is not null)
            {
                foreach (var (key, value) in message.ApplicationProperties.Map)
                {
                    var name = key.ToString() ?? "";
                    if (name == "iothub-ack")
                    {
                        ack = value?.ToString();
                    }
                    else
                    {
                        properties[name] = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
                    }
                }
            }

            var p = message.Properties!;
            var expiry = p.AbsoluteExpiryTime > DateTime.MinValue.AddYears(1) ? p.AbsoluteExpiryTime.ToUniversalTime() : (DateTime?)null;
            try
            {
                owner.hub.EnqueueCloudToDevice(Uri.UnescapeDataString(parts[1]), body, properties, p.MessageId, p.CorrelationId,
                    p.UserId is null ? null : Encoding.UTF8.GetString(p.UserId), p.ContentType, p.ContentEncoding, ack, expiry);
                messageContext.Complete();
            }
            catch (HubError error)
            {
                var condition = error.Status switch
                {
                    404 => ErrorCode.NotFound,
                    403 => ErrorCode.ResourceLimitExceeded,
                    413 => ErrorCode.MessageSizeExceeded,
                    _ => ErrorCode.InvalidField,
                };
                messageContext.Complete(new Error(condition) { Description = $"ErrorCode:{error.Code};{error.Message}" });
            }
        }

        public override void OnFlow(FlowContext flowContext)
        {
        }

        public override void OnDisposition(DispositionContext dispositionContext)
        {
        }
    }

    /// <summary>
    /// The feedback queue as a sender link: one message per batch of records (a JSON array, as the hub sends), kept
    /// unsettled until the reader accepts it; released, rejected or left unsettled when the link closes, its records go
    /// back to the queue for the next reader.
    /// </summary>
    private sealed class FeedbackSource
    {
        private readonly AmqpEndpoint owner;
        private readonly ListenerLink link;
        private readonly CancellationTokenSource closed = new();
        private readonly SemaphoreSlim creditArrived = new(0);
        private readonly Dictionary<Message, List<CloudToDeviceFeedback>> outstanding = [];
        private int credit;

        private FeedbackSource(AmqpEndpoint owner, ListenerLink link)
        {
            this.owner = owner;
            this.link = link;
        }

        public static void Attach(AmqpEndpoint owner, AttachContext attachContext)
        {
            var source = new FeedbackSource(owner, attachContext.Link);
            var link = attachContext.Link;
            // The low-level sender callbacks, since the disposition's outcome decides whether records are done.
            link.InitializeSender((messages, _, _) => source.OnFlow(messages), (message, state, _, _) => source.OnDisposition(message, state), source);
            link.Closed += (_, _) => source.OnClosed();
            link.CompleteAttach(attachContext.Attach, null);
            _ = Task.Run(source.PumpAsync);
        }

        private void OnFlow(int messages)
        {
            Volatile.Write(ref credit, messages);
            creditArrived.Release();
        }

        private void OnDisposition(Message message, DeliveryState? state)
        {
            List<CloudToDeviceFeedback>? records;
            lock (outstanding)
            {
                if (!outstanding.Remove(message, out records))
                {
                    return;
                }
            }

            if (state is not Accepted)
            {
                owner.hub.ReturnFeedback(records);
            }

            link.DisposeMessage(message, new Accepted(), true);
        }

        private void OnClosed()
        {
            closed.Cancel();
            List<CloudToDeviceFeedback> back;
            lock (outstanding)
            {
                back = outstanding.Values.SelectMany(r => r).ToList();
                outstanding.Clear();
            }

            owner.hub.ReturnFeedback(back);
        }

        private async Task PumpAsync()
        {
            try
            {
                while (!closed.IsCancellationRequested)
                {
                    if (Volatile.Read(ref credit) <= 0)
                    {
                        await creditArrived.WaitAsync(TimeSpan.FromSeconds(1), closed.Token).ConfigureAwait(false);
                        continue;
                    }

                    var records = await owner.hub.TakeFeedbackAsync(100, TimeSpan.FromSeconds(1), closed.Token).ConfigureAwait(false);
                    if (records.Count == 0)
                    {
                        continue;
                    }

                    if (closed.IsCancellationRequested)
                    {
                        owner.hub.ReturnFeedback(records);
                        break;
                    }

                    var message = ToAmqp(records, owner.hub.HostName);
                    lock (outstanding)
                    {
                        outstanding[message] = records;
                    }

                    try
                    {
                        link.SendMessage(message);
                        Interlocked.Decrement(ref credit);
                    }
                    catch (Exception ex) when (ex is AmqpException or ObjectDisposedException)
                    {
                        OnClosed();
                        break;
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        private static Message ToAmqp(List<CloudToDeviceFeedback> records, string hostName)
        {
            var json = new System.Text.Json.Nodes.JsonArray(records.Select(r => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject
            {
                ["originalMessageId"] = r.OriginalMessageId,
                ["description"] = r.StatusCode,
                ["statusCode"] = r.StatusCode,
                ["deviceId"] = r.DeviceId,
                ["deviceGenerationId"] = "",
                ["enqueuedTimeUtc"] = r.EnqueuedTimeUtc.ToString("O", CultureInfo.InvariantCulture),
            }).ToArray());
            return new Message
            {
                BodySection = new Data { Binary = Encoding.UTF8.GetBytes(json.ToJsonString()) },
                Properties = new Properties
                {
                    MessageId = Guid.NewGuid().ToString(),
                    ContentType = "application/vnd.microsoft.iothub.feedback.json",
                    UserId = Encoding.UTF8.GetBytes(hostName.Split('.')[0]),
                },
            };
        }
    }
}
