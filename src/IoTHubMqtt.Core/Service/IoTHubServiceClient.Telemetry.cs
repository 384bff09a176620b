using System.Globalization;
using Amqp;
using Amqp.Framing;
using Azure;
using Azure.Messaging.EventHubs;
using Azure.Messaging.EventHubs.Consumer;
using Azure.Messaging.EventHubs.Primitives;
using Azure.Messaging.EventHubs.Processor;
using Azure.Storage.Blobs;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service;

/// <summary>
/// Telemetry through the hub's Event Hub-compatible ("built-in") endpoint, read with the Event Hubs client library
/// (Azure.Messaging.EventHubs): the hub's <c>messages/events</c> node redirects (<c>amqp:link:redirect</c>) to the Event
/// Hubs namespace and entity, which take the same policy name and key by the Event Hubs rule.
/// See https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-messages-read-builtin
/// </summary>
public sealed partial class IoTHubServiceClient
{
    private (string Host, int Port, string Entity)? eventHub;

    /// <summary>
    /// The Event Hub-compatible endpoint the hub's <c>messages/events</c> node redirects to: its host, AMQP port and
    /// entity name (asked once, then remembered).
    /// </summary>
    public async Task<(string Host, int Port, string EventHubName)> GetEventHubEndpointAsync(CancellationToken cancellationToken = default)
    {
        if (eventHub is { } known)
        {
            return known;
        }

        const string operation = "Read telemetry";
        await using var hub = await OpenHubAmqpAsync(operation, cancellationToken).ConfigureAwait(false);
        var (link, refused) = await AttachAsync(on => new ReceiverLink(hub.Session, "events-" + Guid.NewGuid().ToString("N")[..12],
            new Source { Address = "/messages/events/ConsumerGroups/$Default/Partitions/0" }, on), cancellationToken).ConfigureAwait(false);
        if (refused is null)
        {
            await AmqpServiceConnection.CloseQuietlyAsync(link).ConfigureAwait(false);
            throw new IoTHubMqttException(ErrorIds.TelemetryRedirectMissing,
                $"{operation}: {HostName} opened its events link instead of redirecting to its Event Hub-compatible endpoint.",
                "Read the hub's built-in endpoint with an Event Hubs client and its Event Hub-compatible connection string.", HostName);
        }

        if (refused.Condition.ToString() != ErrorCode.LinkRedirect)
        {
            throw AmqpErrors.From(refused, operation, HostName);
        }

        var found = ParseRedirect(refused, operation);
        options.Log?.Invoke($"{operation}: {HostName} redirected to {found.Host}:{found.Port.ToString(CultureInfo.InvariantCulture)}/{found.Entity}.");
        eventHub = found;
        return found;
    }

    /// <summary>
    /// Opens a reader of device-to-cloud messages from the partitions of the hub's Event Hub-compatible endpoint (all, or
    /// <see cref="TelemetryReadOptions.PartitionIds"/>), through the Event Hubs processor with the checkpoint store
    /// <see cref="TelemetryReadOptions.Checkpoint"/> names (in memory when none). A refused key, an unknown consumer group
    /// or partition and an unusable checkpoint store are errors here, before anything is read.
    /// </summary>
    public async Task<TelemetryReader> OpenTelemetryReaderAsync(TelemetryReadOptions? read = null, CancellationToken cancellationToken = default)
    {
        read ??= new TelemetryReadOptions();
        var group = string.IsNullOrEmpty(read.ConsumerGroup) ? EventHubConsumerClient.DefaultConsumerGroupName : read.ConsumerGroup;
        if (policy.SharedAccessKey is null || policy.SharedAccessKeyName is null)
        {
            throw new IoTHubMqttException(ErrorIds.EventHubKeyRequired,
                "Reading telemetry needs the policy's key: a connection string with only a SAS token cannot sign for the Event Hub-compatible endpoint.",
                "Connect with a policy connection string that has SharedAccessKeyName and SharedAccessKey (service or iothubowner).", HostName);
        }

        var (host, port, entity) = await GetEventHubEndpointAsync(cancellationToken).ConfigureAwait(false);
        var connection = new EventHubConnectionOptions
        {
            CertificateValidationCallback = (_, certificate, chain, errors) => tlsTrust.Validate(certificate, chain, errors),
            CustomEndpointAddress = port == 5671 ? null : new Uri($"amqps://{host}:{port.ToString(CultureInfo.InvariantCulture)}"),
        };
        var retry = new EventHubsRetryOptions
        {
            MaximumRetries = Math.Clamp(options.MaxRetries, 0, 100),
            Delay = options.RetryInitialDelay,
            MaximumDelay = options.RetryMaxDelay,
            TryTimeout = options.RequestTimeout,
        };
        var credential = new AzureNamedKeyCredential(policy.SharedAccessKeyName, policy.SharedAccessKey);

        string[] all;
        try
        {
            await using var consumer = new EventHubConsumerClient(group, host, entity, credential, new EventHubConsumerClientOptions { ConnectionOptions = connection, RetryOptions = retry });
            all = (await consumer.GetEventHubPropertiesAsync(cancellationToken).ConfigureAwait(false)).PartitionIds;
        }
        catch (Exception ex) when (ex is EventHubsException or UnauthorizedAccessException or System.Security.Authentication.AuthenticationException)
        {
            throw TelemetryReader.Classify(ex, "read the endpoint's properties") ?? new IoTHubMqttException(ErrorIds.IoTHubConnectionFailed,
                $"Read telemetry: the Event Hub-compatible endpoint {host}:{port.ToString(CultureInfo.InvariantCulture)} could not be read: {ex.Message}",
                "Check the network and that the hub is reachable on its AMQP port.", host, ex);
        }

        var partitionIds = read.PartitionIds is { Count: > 0 } wanted ? wanted.Distinct(StringComparer.Ordinal).ToList() : [.. all];
        if (partitionIds.FirstOrDefault(p => !all.Contains(p, StringComparer.Ordinal)) is { } unknown)
        {
            throw new IoTHubMqttException(ErrorIds.PartitionNotFound,
                $"The Event Hub-compatible endpoint has no partition '{unknown}': its partitions are {string.Join(", ", all)}.", "Pass partition ids the hub has.", unknown);
        }

        var checkpoints = TelemetryCheckpoints.Create(read.Checkpoint);
        await PrepareAsync(checkpoints, read.Checkpoint, cancellationToken).ConfigureAwait(false);
        var processorOptions = new EventProcessorOptions
        {
            Identifier = read.ReaderId is { Length: > 0 } id ? id : Guid.NewGuid().ToString(),
            ConnectionOptions = connection,
            RetryOptions = retry,
            MaximumWaitTime = TimeSpan.FromSeconds(1),
            LoadBalancingStrategy = LoadBalancingStrategy.Greedy,
            LoadBalancingUpdateInterval = read.LoadBalancingInterval,
            PartitionOwnershipExpirationInterval = read.OwnershipExpiration,
            DefaultStartingPosition = read.Start switch
            {
                TelemetryStart.Latest => EventPosition.Latest,
                _ when read.EnqueuedAfter is { } after => EventPosition.FromEnqueuedTime(after),
                _ => EventPosition.Earliest,
            },
        };

        var reader = new TelemetryReader(host, entity, group, partitionIds, read.DeviceId, options.MaxRetries, options.Log) { Checkpoint = read.Checkpoint };
        var store = new HandoverCheckpointStore(checkpoints, processorOptions.Identifier, read.OwnershipExpiration, read.LoadBalancingInterval,
            reader.HandOverAsync, reader.Progressed, options.Log);
        var processor = new TelemetryProcessor(reader, store, group, host, entity, credential, partitionIds, processorOptions);
        reader.Start(processor);
        try
        {
            await processor.StartProcessingAsync(cancellationToken).ConfigureAwait(false);
            return reader;
        }
        catch (Exception ex) when (ex is EventHubsException or RequestFailedException or AggregateException)
        {
            await reader.DisposeAsync().ConfigureAwait(false);
            throw TelemetryReader.Classify(ex is AggregateException { InnerException: { } inner } ? inner : ex, "start") ?? new IoTHubMqttException(ErrorIds.IoTHubConnectionFailed,
                $"Read telemetry: the reader could not start: {ex.Message}", null, host, ex);
        }
        catch
        {
            await reader.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>How long one wait for messages lasts at the most, so that a read without a timeout still checks in.</summary>
    private static readonly TimeSpan TelemetryPoll = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Reads telemetry as <paramref name="request"/> asks, handing each batch to <paramref name="deliver"/> (which returns
    /// how many it handed on), until the count is reached, the timeout has passed or <paramref name="cancellationToken"/>
    /// is cancelled (or <paramref name="deliver"/> fails). However it ends, the reader is closed before this returns: the
    /// checkpoint of what was delivered is written, the partitions are given up and the AMQP connections are closed.
    /// <paramref name="opened"/> is told of the reader once it reads.
    /// </summary>
    public async Task<TelemetryReceiveResult> ReceiveTelemetryAsync(TelemetryReceiveRequest request, Func<TelemetryBatch, CancellationToken, Task<int>> deliver,
        Action<TelemetryReader>? opened = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(deliver);
        var read = request.ToReadOptions();
        var started = options.TimeProvider.GetTimestamp();
        var reader = await OpenTelemetryReaderAsync(read, cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            opened?.Invoke(reader);
            var received = 0;
            while (request.Count == 0 || received < request.Count)
            {
                var remaining = request.Timeout is { } timeout ? timeout - options.TimeProvider.GetElapsedTime(started) : TelemetryPoll;
                if (remaining <= TimeSpan.Zero)
                {
                    break;
                }

                var max = request.Count == 0 ? 100 : Math.Min(100, request.Count - received);
                var batch = await reader.ReadAsync(max, remaining < TelemetryPoll ? remaining : TelemetryPoll, cancellationToken).ConfigureAwait(false);
                if (batch.Count > 0)
                {
                    received += await deliver(new TelemetryBatch(reader, batch, received), cancellationToken).ConfigureAwait(false);
                }
            }

            return new TelemetryReceiveResult(received, request.Count, request.Timeout);
        }
    }

    /// <summary>Checks the checkpoint store before reading: a file must be one this module wrote; a container is created when missing.</summary>
    private static async Task PrepareAsync(CheckpointStore store, TelemetryCheckpointLocation? location, CancellationToken cancellationToken)
    {
        switch (store)
        {
            case FileCheckpointStore file:
                await file.ValidateAsync(cancellationToken).ConfigureAwait(false);
                break;
            case BlobCheckpointStore blobs:
                try
                {
                    await blobs.Container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                catch (RequestFailedException ex) when (ex.Status is 403 && ex.ErrorCode is "AuthorizationPermissionMismatch" or "AuthorizationResourceTypeMismatch")
                {
                    // A SAS for the container's blobs may not create the container; it may still exist.
                    if (!await blobs.Container.ExistsAsync(cancellationToken).ConfigureAwait(false))
                    {
                        throw TelemetryReader.Classify(ex, "create the container")!;
                    }
                }
                catch (RequestFailedException ex)
                {
                    throw TelemetryReader.Classify(ex, $"prepare {location}") ?? new IoTHubMqttException(ErrorIds.CheckpointStoreFailed,
                        $"Read telemetry: the checkpoint container {location} answered {ex.Status.ToString(CultureInfo.InvariantCulture)}: {ex.Message.Split('\n')[0]}", null, location?.ToString(), ex);
                }
                catch (Exception ex) when (ex is AggregateException or HttpRequestException or IOException)
                {
                    throw new IoTHubMqttException(ErrorIds.CheckpointStoreFailed,
                        $"Read telemetry: the checkpoint container {location} could not be reached: {ex.Message}", "Check the storage account's address and the network.", location?.ToString(), ex);
                }

                break;
        }
    }
}
