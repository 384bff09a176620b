using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Amqp;
using Amqp.Framing;
using Amqp.Listener;
using Amqp.Types;
using IoTHubMqtt.Emulator.Hub;

namespace IoTHubMqtt.Emulator.Service;

/// <summary>
/// The Event Hub-compatible entity: partition receivers with the Event Hubs start filters and owner levels (epochs),
/// and <c>$management</c> reads of the entity and its partitions.
/// See https://learn.microsoft.com/azure/event-hubs/event-hubs-amqp-troubleshoot and the Event Hubs AMQP management
/// operations (https://learn.microsoft.com/rest/api/eventhub/ and the SDKs' <c>$management</c> READ requests).
/// </summary>
internal sealed partial class AmqpEndpoint
{
    /// <summary>Event Hubs' limit of receivers without an owner level on one partition of one consumer group.</summary>
    internal const int MaxReadersPerPartition = 5;

    private static readonly Symbol EpochProperty = new("com.microsoft:epoch");
    private static readonly Symbol SelectorFilter = new("apache.org:selector-filter:string");

    /// <summary>Receiver links attached to partitions now (for tests that must know a reader is in place).</summary>
    internal int ConsumerCount => consumers.Count;

    /// <summary>The hub's <c>messages/events…</c> node: an <c>amqp:link:redirect</c> to the same path on the entity.</summary>
    private void Redirect(AttachContext attachContext, string rest)
    {
        var address = $"amqps://{hub.HostName}:{Port.ToString(CultureInfo.InvariantCulture)}/{hub.EventHubName}{rest}";
        log.Verbose($"AMQP attach to 'messages/events{rest}' redirected to '{address}'.");
        attachContext.Complete(new Error(ErrorCode.LinkRedirect)
        {
            Description = "Read events from the Event Hub-compatible endpoint.",
            Info = new Fields
            {
                [new Symbol("hostname")] = hub.HostName,
                [new Symbol("network-host")] = hub.HostName,
                [new Symbol("port")] = Port,
                [new Symbol("address")] = address,
            },
        });
    }

    /// <summary>A receiver on <c>{entity}/ConsumerGroups/{group}/Partitions/{id}</c>.</summary>
    private void AttachConsumer(AttachContext attachContext, string node)
    {
        var segments = node.Split('/');
        if (segments is not [_, var groups, var group, var partitions, var partition]
            || !groups.Equals("ConsumerGroups", StringComparison.OrdinalIgnoreCase)
            || !partitions.Equals("Partitions", StringComparison.OrdinalIgnoreCase))
        {
            attachContext.Complete(new Error(ErrorCode.NotFound) { Description = $"No node '{node}': read {hub.EventHubName}/ConsumerGroups/{{group}}/Partitions/{{id}}." });
            return;
        }

        if (!ValidConsumerGroup(group))
        {
            attachContext.Complete(new Error(ErrorCode.NotFound) { Description = $"The consumer group '{group}' does not exist: names are 1 to 50 letters, digits, periods, hyphens and underscores." });
            return;
        }

        if (!int.TryParse(partition, NumberStyles.None, CultureInfo.InvariantCulture, out var index) || index >= hub.PartitionCount)
        {
            attachContext.Complete(new Error(ErrorCode.NotFound) { Description = $"No partition '{partition}': there are {hub.PartitionCount}, 0 to {hub.PartitionCount - 1}." });
            return;
        }

        var source = attachContext.Attach.Source as Source;
        EventPosition position;
        try
        {
            position = EventPosition.Parse(SelectorOf(source));
        }
        catch (FormatException ex)
        {
            attachContext.Complete(new Error(new Symbol("com.microsoft:argument-error")) { Description = ex.Message });
            return;
        }

        var epoch = attachContext.Attach.Properties?[EpochProperty] is { } e ? Convert.ToInt64(e, CultureInfo.InvariantCulture) : (long?)null;
        _ = new TelemetrySource(this, attachContext, group.ToLowerInvariant(), index, position, epoch);
    }

    /// <summary>Consumer group names as Event Hubs takes them: <c>$Default</c>, or 1–50 letters, digits, '.', '-', '_'.</summary>
    internal static bool ValidConsumerGroup(string group) =>
        group.Equals("$Default", StringComparison.OrdinalIgnoreCase) || Regex.IsMatch(group, "^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$", RegexOptions.CultureInvariant);

    private static string? SelectorOf(Source? source)
    {
        if (source?.FilterSet is null)
        {
            return null;
        }

        foreach (var key in source.FilterSet.Keys)
        {
            var value = source.FilterSet[key];
            var described = value as DescribedValue;
            if (SelectorFilter.Equals(key as Symbol) || SelectorFilter.Equals(described?.Descriptor as Symbol))
            {
                return described?.Value as string ?? value as string;
            }
        }

        return null;
    }

    /// <summary>
    /// A <c>$management</c> READ: <c>type</c> <c>com.microsoft:eventhub</c> answers the entity (name, creation time,
    /// partition ids), <c>com.microsoft:partition</c> one partition (begin and last sequence number, last offset and
    /// time, whether it is empty). The request carries its token as <c>security_token</c>, or the connection has one.
    /// </summary>
    private Message AnswerManagement(Connection connection, Message request)
    {
        var properties = request.ApplicationProperties;
        var operation = properties?["operation"] as string;
        var type = properties?["type"] as string;
        var name = properties?["name"] as string;
        var entity = hub.EventHubName;
        var authorized = IsAuthorized(connection, entity)
            || (properties?["security_token"] is string token && Authorize(token, hub.HostName + "/" + entity, out _) is not null);
        if (!authorized)
        {
            return Reply(request, 401, $"Unauthorized: put a token for '{hub.HostName}/{entity}' on $cbs or send it as security_token.");
        }

        if (operation != "READ")
        {
            return Reply(request, 400, $"The operation '{operation}' is not supported: only READ.");
        }

        if (!string.Equals(name, entity, StringComparison.OrdinalIgnoreCase))
        {
            return Reply(request, 404, $"No entity '{name}': this hub's Event Hub-compatible name is '{entity}'.");
        }

        switch (type)
        {
            case "com.microsoft:eventhub":
                var ids = Enumerable.Range(0, hub.PartitionCount).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
                return Reply(request, 200, "OK", new Map
                {
                    ["name"] = entity,
                    ["type"] = type,
                    ["created_at"] = DateTime.UnixEpoch,
                    ["partition_count"] = ids.Length,
                    ["partition_ids"] = ids,
                });
            case "com.microsoft:partition":
                var partition = properties?["partition"] is { } p ? Convert.ToString(p, CultureInfo.InvariantCulture) : null;
                if (!int.TryParse(partition, NumberStyles.None, CultureInfo.InvariantCulture, out var index) || index >= hub.PartitionCount)
                {
                    return Reply(request, 404, $"No partition '{partition}': there are {hub.PartitionCount}, 0 to {hub.PartitionCount - 1}.");
                }

                var state = hub.Telemetry.DescribePartition(index);
                return Reply(request, 200, "OK", new Map
                {
                    ["name"] = entity,
                    ["type"] = type,
                    ["partition"] = partition,
                    ["begin_sequence_number"] = state.BeginSequenceNumber,
                    ["last_enqueued_sequence_number"] = state.LastSequenceNumber,
                    ["last_enqueued_offset"] = state.LastOffset is { } offset ? offset.ToString(CultureInfo.InvariantCulture) : "-1",
                    ["last_enqueued_time_utc"] = state.LastEnqueuedTimeUtc is { } time
                        ? DateTimeOffset.FromUnixTimeMilliseconds(new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc)).ToUnixTimeMilliseconds()).UtcDateTime
                        : DateTime.UnixEpoch,
                    ["is_partition_empty"] = state.IsEmpty,
                });
            default:
                return Reply(request, 400, $"The type '{type}' is not supported: com.microsoft:eventhub or com.microsoft:partition.");
        }
    }

    /// <summary>
    /// Where a receiver starts, from its selector filter, as Event Hubs reads it: <c>amqp.annotation.x-opt-offset</c>
    /// (<c>'-1'</c> the start, <c>'@latest'</c> the end), <c>x-opt-sequence-number</c> or <c>x-opt-enqueued-time</c>
    /// (milliseconds since 1970, compared with enqueued times at that precision, as they are served), each with
    /// <c>&gt;</c> or <c>&gt;=</c>. No filter starts at the beginning.
    /// </summary>
    internal readonly record struct EventPosition(string Annotation, bool Inclusive, string Value)
    {
        private static readonly Regex Expression = new(@"^\s*amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*(>=|>)\s*(?:'([^']*)'|([^'\s]+))\s*$",
            RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);

        public static EventPosition Parse(string? selector)
        {
            if (string.IsNullOrWhiteSpace(selector))
            {
                return new EventPosition("x-opt-offset", false, "-1");
            }

            var match = Expression.Match(selector);
            if (!match.Success)
            {
                throw new FormatException($"The filter '{selector}' is not an Event Hubs start position: amqp.annotation.x-opt-offset, x-opt-sequence-number or x-opt-enqueued-time with > or >= and a quoted value.");
            }

            var value = match.Groups[3].Success ? match.Groups[3].Value : match.Groups[4].Value;
            var position = new EventPosition(match.Groups[1].Value.ToLowerInvariant(), match.Groups[2].Value == ">=", value);
            var numeric = long.TryParse(position.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _);
            if (!numeric && !(position.Annotation == "x-opt-offset" && position.Value == "@latest"))
            {
                throw new FormatException($"The filter '{selector}' has a value that is not a number.");
            }

            return position;
        }

        /// <summary>The partition sequence number the reader starts at.</summary>
        public long Resolve(TelemetryLog log, int partition)
        {
            var value = Value == "@latest" ? 0 : long.Parse(Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            var inclusive = Inclusive;
            return (Annotation, Value) switch
            {
                ("x-opt-offset", "@latest") => log.DescribePartition(partition).LastSequenceNumber + 1,
                ("x-opt-offset", _) => log.FirstInPartition(partition, m => inclusive ? m.SequenceNumber >= value : m.SequenceNumber > value),
                ("x-opt-sequence-number", _) => Math.Max(inclusive ? value : value + 1, log.DescribePartition(partition).BeginSequenceNumber),
                _ => log.FirstInPartition(partition, m => inclusive ? Milliseconds(m) >= value : Milliseconds(m) > value),
            };
        }

        public static long Milliseconds(TelemetryMessage message) =>
            new DateTimeOffset(DateTime.SpecifyKind(message.EnqueuedTimeUtc, DateTimeKind.Utc)).ToUnixTimeMilliseconds();

        public override string ToString() => $"{Annotation} {(Inclusive ? ">=" : ">")} '{Value}'";
    }

    /// <summary>
    /// The receivers of each partition of each consumer group, with their owner levels (epochs), as Event Hubs keeps
    /// them: a receiver with an owner level takes the partition from every receiver with the same, a lower or no owner level
    /// (they are closed with <c>amqp:link:stolen</c>) and is refused when one with a higher level holds it; a receiver
    /// without one is refused while one with a level holds it, or when <see cref="MaxReadersPerPartition"/> already read.
    /// </summary>
    private sealed class ConsumerRegistry
    {
        private readonly Dictionary<(string Group, int Partition), List<TelemetrySource>> readers = [];

        public int Count
        {
            get
            {
                lock (readers)
                {
                    return readers.Values.Sum(l => l.Count);
                }
            }
        }

        /// <summary>Adds <paramref name="source"/>, or returns why it may not read; the receivers it takes over are returned to be closed.</summary>
        public Error? TryAdd(TelemetrySource source, out List<TelemetrySource> stolen)
        {
            stolen = [];
            lock (readers)
            {
                var key = (source.Group, source.Partition);
                if (!readers.TryGetValue(key, out var list))
                {
                    readers[key] = list = [];
                }

                var holder = list.Where(r => r.Epoch is not null).MaxBy(r => r.Epoch);
                if (source.Epoch is { } epoch)
                {
                    if (holder?.Epoch > epoch)
                    {
                        return new Error(ErrorCode.Stolen)
                        {
                            Description = $"A receiver with owner level {holder.Epoch} reads partition {source.Partition} of consumer group '{source.Group}': owner level {epoch} may not.",
                        };
                    }

                    stolen = [.. list];
                    list.Clear();
                }
                else if (holder is not null)
                {
                    return new Error(ErrorCode.Stolen)
                    {
                        Description = $"A receiver with owner level {holder.Epoch} reads partition {source.Partition} of consumer group '{source.Group}': a receiver without one may not.",
                    };
                }
                else if (list.Count >= MaxReadersPerPartition)
                {
                    return new Error(ErrorCode.ResourceLimitExceeded)
                    {
                        Description = $"At most {MaxReadersPerPartition} receivers may read partition {source.Partition} of consumer group '{source.Group}' at once.",
                    };
                }

                list.Add(source);
                return null;
            }
        }

        public void Remove(TelemetrySource source)
        {
            lock (readers)
            {
                if (readers.TryGetValue((source.Group, source.Partition), out var list))
                {
                    list.Remove(source);
                }
            }
        }
    }

    /// <summary>Sends one partition's telemetry to a receiver link as the Event Hub-compatible endpoint does, as far as credit allows.</summary>
    private sealed class TelemetrySource : LinkEndpoint
    {
        private readonly AmqpEndpoint owner;
        private readonly ListenerLink link;
        private readonly CancellationTokenSource closed = new();
        private readonly SemaphoreSlim creditArrived = new(0);

        /// <summary>Orders sends and flows: a flow's change of credit is counted against the sends made before it.</summary>
        private readonly object creditGate = new();

        /// <summary>How many more messages the receiver allows now (AMQP 1.0 section 2.6.7: its delivery-count plus link-credit, less what was sent).</summary>
        private long credit;

        /// <summary>
        /// The credit as the AMQP library counts it. The library reports each flow as the change against this count, which it
        /// sets to zero on a flow that grants nothing new; keeping it is what turns a change back into the receiver's limit.
        /// </summary>
        private long libraryCredit;
        private long next;

        /// <summary>Cancels the wait for telemetry under way (null when none), so that a drain is answered at once.</summary>
        private CancellationTokenSource? waiting;

        public TelemetrySource(AmqpEndpoint owner, AttachContext attachContext, string group, int partition, EventPosition position, long? epoch)
        {
            this.owner = owner;
            Group = group;
            Partition = partition;
            Epoch = epoch;
            link = attachContext.Link;
            var refused = owner.consumers.TryAdd(this, out var stolen);
            if (refused is not null)
            {
                owner.log.Verbose($"AMQP receiver on partition {partition} of '{group}' refused: {refused.Description}");
                attachContext.Complete(refused);
                return;
            }

            foreach (var old in stolen)
            {
                old.Steal(epoch ?? 0);
            }

            next = position.Resolve(owner.hub.Telemetry, partition);
            owner.log.Verbose($"AMQP receiver on partition {partition} of '{group}' from {position} (sequence number {next}){(epoch is null ? "" : $", owner level {epoch}")}.");
            link.Closed += (_, _) =>
            {
                closed.Cancel();
                owner.consumers.Remove(this);
            };
            attachContext.Complete(this, 0);
            _ = Task.Run(PumpAsync);
        }

        public string Group { get; }

        public int Partition { get; }

        public long? Epoch { get; }

        /// <summary>
        /// A flow from the receiver: <see cref="FlowContext.Messages"/> is the change of its limit (its delivery-count plus
        /// link-credit) against the library's count, not a new credit. A receiver grants credit as it consumes (the Event
        /// Hubs clients restore it after each batch and lower or raise it with their prefetch), so the credit it still holds
        /// counts on: taking the change for the whole credit left a receiver that still held credit waiting for messages the
        /// endpoint thought it had not asked for.
        /// </summary>
        public override void OnFlow(FlowContext flowContext)
        {
            lock (creditGate)
            {
                var change = flowContext.Messages;
                credit = Math.Max(0, libraryCredit + change);
                libraryCredit = change <= 0 ? 0 : libraryCredit + change;
                if (link.IsDraining && credit == 0)
                {
                    // AMQP 1.0 section 2.6.7: the sender answers a drain with its flow state even when no credit is left to
                    // use up (Microsoft.Azure.Amqp's DrainAsyc drains whatever it holds, none included, and waits for that answer).
                    CompleteDrain();
                }
                else if (link.IsDraining)
                {
                    // AMQP 1.0 section 2.6.7: a draining receiver is told at once that nothing more is there, not when the
                    // wait for telemetry on the credit it held ends. The wait's callbacks run off this (the connection's) thread.
                    _ = waiting?.CancelAsync();
                }
            }

            creditArrived.Release();
        }

        /// <summary>Sends <paramref name="message"/> when the receiver allows one more; false when its credit is used up.</summary>
        private bool TrySend(Message message)
        {
            lock (creditGate)
            {
                if (credit <= 0)
                {
                    return false;
                }

                link.SendMessage(message);
                credit--;
                libraryCredit--;
                return true;
            }
        }

        /// <summary>
        /// A receiver that drains (AMQP 1.0 section 2.6.7) and has had every message there is: its remaining credit is used
        /// up — delivery-count advances by all of it and link-credit goes to 0. The library advances by the credit it counts,
        /// which it sets to zero on a drain flow that grants nothing new (a receiver draining the credit it already held), so
        /// it is given the receiver's credit first (a flow stating the sender's delivery-count, that credit and drain).
        /// </summary>
        private void CompleteDrain()
        {
            lock (creditGate)
            {
                if (credit != libraryCredit)
                {
                    link.SetCredit((int)credit, drain: true, autoRestore: false);
                }

                link.CompleteDrain();
                credit = 0;
                libraryCredit = 0;
            }
        }

        public override void OnDisposition(DispositionContext dispositionContext) => dispositionContext.Complete();

        public override void OnLinkClosed(ListenerLink link, Error error)
        {
            closed.Cancel();
            owner.consumers.Remove(this);
        }

        /// <summary>Closes the link because a receiver with owner level <paramref name="by"/> took the partition.</summary>
        private void Steal(long by)
        {
            closed.Cancel();
            try
            {
                link.Close(TimeSpan.Zero, new Error(ErrorCode.Stolen)
                {
                    Description = $"A receiver with owner level {by} took partition {Partition} of consumer group '{Group}'{(Epoch is null ? "" : $" from owner level {Epoch}")}.",
                });
            }
            catch (Exception ex) when (ex is AmqpException or ObjectDisposedException)
            {
            }
        }

        private async Task PumpAsync()
        {
            try
            {
                while (!closed.IsCancellationRequested)
                {
                    long available;
                    lock (creditGate)
                    {
                        available = credit;
                    }

                    if (available <= 0)
                    {
                        await creditArrived.WaitAsync(TimeSpan.FromSeconds(1), closed.Token).ConfigureAwait(false);
                        continue;
                    }

                    CancellationTokenSource wake;
                    bool draining;
                    lock (creditGate)
                    {
                        // Under the gate: a drain flow either is seen here or finds this wait to cancel.
                        wake = waiting = CancellationTokenSource.CreateLinkedTokenSource(closed.Token);
                        draining = link.IsDraining;
                    }

                    IReadOnlyList<TelemetryMessage> batch;
                    try
                    {
                        batch = await owner.hub.Telemetry.ReadPartitionAsync(Partition, next, (int)Math.Min(available, 100), draining ? TimeSpan.Zero : TimeSpan.FromSeconds(1), wake.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!closed.IsCancellationRequested)
                    {
                        continue; // a drain arrived: read again without waiting
                    }
                    finally
                    {
                        lock (creditGate)
                        {
                            waiting = null;
                        }

                        wake.Dispose();
                    }

                    if (batch.Count == 0 && draining)
                    {
                        CompleteDrain();
                        continue;
                    }

                    foreach (var telemetry in batch)
                    {
                        if (closed.IsCancellationRequested || !TrySend(ToAmqp(telemetry, Partition)))
                        {
                            break; // closed, or the receiver lowered its credit meanwhile: the rest is read again
                        }

                        next = telemetry.PartitionSequenceNumber + 1;
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (AmqpException ex)
            {
                owner.log.Verbose($"AMQP telemetry link ended: {ex.Error?.Condition}.");
            }
            catch (ObjectDisposedException)
            {
            }
        }

        /// <summary>
        /// An event as the built-in endpoint serves it: the message's own properties, the Event Hubs annotations and the
        /// hub's system properties (IoT Hub message construct: iothub-connection-device-id, -module-id, -auth-method,
        /// -auth-generation-id, iothub-enqueuedtime, iothub-message-source, iothub-creation-time-utc).
        /// </summary>
        private static Message ToAmqp(TelemetryMessage telemetry, int partition)
        {
            var message = new Message { BodySection = new Data { Binary = telemetry.Body } };
            var system = telemetry.SystemProperties;
            message.Properties = new Properties
            {
                MessageId = system.GetValueOrDefault("message-id"),
                CorrelationId = system.GetValueOrDefault("correlation-id"),
                ContentType = system.GetValueOrDefault("content-type"),
                ContentEncoding = system.GetValueOrDefault("content-encoding"),
            };
            if (system.TryGetValue("user-id", out var userId))
            {
                message.Properties.UserId = Encoding.UTF8.GetBytes(userId);
            }

            // AMQP timestamps are milliseconds: served truncated, as the start filters compare them.
            var enqueued = DateTimeOffset.FromUnixTimeMilliseconds(EventPosition.Milliseconds(telemetry)).UtcDateTime;
            var annotations = message.MessageAnnotations = new MessageAnnotations();
            annotations[new Symbol("x-opt-sequence-number")] = telemetry.PartitionSequenceNumber;
            annotations[new Symbol("x-opt-offset")] = telemetry.SequenceNumber.ToString(CultureInfo.InvariantCulture);
            annotations[new Symbol("x-opt-enqueued-time")] = enqueued;
            annotations[new Symbol("x-opt-partition-id")] = partition.ToString(CultureInfo.InvariantCulture);
            annotations[new Symbol("iothub-connection-device-id")] = telemetry.DeviceId;
            if (telemetry.ModuleId is not null)
            {
                annotations[new Symbol("iothub-connection-module-id")] = telemetry.ModuleId;
            }

            foreach (var name in (string[])["iothub-connection-auth-method", "iothub-connection-auth-generation-id", "iothub-creation-time-utc"])
            {
                if (system.TryGetValue(name, out var value))
                {
                    annotations[new Symbol(name)] = value;
                }
            }

            annotations[new Symbol("iothub-enqueuedtime")] = enqueued;
            annotations[new Symbol("iothub-message-source")] = "Telemetry";
            message.ApplicationProperties = new ApplicationProperties();
            foreach (var (name, value) in telemetry.Properties)
            {
                message.ApplicationProperties[name] = value;
            }

            return message;
        }
    }
}
