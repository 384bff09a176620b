using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Emulator.Mqtt;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace IoTHubMqtt.Emulator.Provisioning;

/// <summary>
/// DPS device registration over MQTT: <c>$dps/registrations/PUT/iotdps-register/?$rid=</c> answered 202 with an
/// operation id and retry-after, polled with <c>…/GET/iotdps-get-operationstatus/?$rid=&amp;operationId=</c>.
/// See https://learn.microsoft.com/azure/iot-dps/iot-dps-mqtt-support
/// </summary>
internal sealed class DpsEndpoint(DpsState dps, SasAuthenticator authenticator, int retryAfterSeconds, EmulatorLog log)
{
    private const string ResponsePrefix = "$dps/registrations/res/";
    private readonly ConcurrentDictionary<string, Enrollment> authenticated = new(StringComparer.Ordinal);
    private MqttServer? server;

    /// <summary>The emulated tier's throttles (DPS registrations and status polls), or null.</summary>
    public Tiers.TierThrottles? Tier { get; set; }

    public void Attach(MqttServer mqttServer)
    {
        server = mqttServer;
        mqttServer.ValidatingConnectionAsync += ValidateAsync;
        mqttServer.ClientDisconnectedAsync += e =>
        {
            if (e.DisconnectType != MqttClientDisconnectType.Takeover)
            {
                authenticated.TryRemove(e.ClientId, out _);
            }

            return Task.CompletedTask;
        };
        mqttServer.InterceptingSubscriptionAsync += e =>
        {
            if (e.TopicFilter.Topic != ResponsePrefix + "#")
            {
                e.ProcessSubscription = false;
                e.CloseConnection = true;
                e.Response.ReasonCode = MqttSubscribeReasonCode.NotAuthorized;
            }

            return Task.CompletedTask;
        };
        mqttServer.InterceptingPublishAsync += InterceptPublishAsync;
    }

    private Task ValidateAsync(ValidatingConnectionEventArgs e)
    {
        var registrationId = e.ClientId ?? "";
        var user = e.UserName ?? "";
        var expectedPrefix = $"{dps.IdScope}/registrations/{registrationId}/";
        if (registrationId.Length == 0 || !user.StartsWith(expectedPrefix, StringComparison.Ordinal) || !user.Contains("api-version=", StringComparison.Ordinal))
        {
            e.ReasonCode = MqttConnectReasonCode.BadUserNameOrPassword;
            log.Information($"DPS refused '{registrationId}': the user name is not '{{idScope}}/registrations/{{registrationId}}/api-version=…'.");
            return Task.CompletedTask;
        }

        Enrollment? matched = null;
        var token = authenticator.Validate(e.Password, SasResource.ForDpsRegistration(dps.IdScope, registrationId), info =>
        {
            if (info.PolicyName != SasResource.DpsRegistrationPolicy)
            {
                return [];
            }

            return dps.CandidateKeys(registrationId).Select(c => c.Key);
        }, out var reason);
        if (token is not null)
        {
            // find which enrollment the signature belongs to
            foreach (var (enrollment, key) in dps.CandidateKeys(registrationId))
            {
                if (authenticator.Validate(e.Password, SasResource.ForDpsRegistration(dps.IdScope, registrationId), _ => [key], out _) is not null)
                {
                    matched = enrollment;
                    break;
                }
            }
        }

        if (matched is null)
        {
            e.ReasonCode = MqttConnectReasonCode.NotAuthorized;
            log.Information($"DPS refused '{registrationId}': {(token is null ? reason : "no enrollment")}.");
            return Task.CompletedTask;
        }

        authenticated[registrationId] = matched;
        return Task.CompletedTask;
    }

    private Task InterceptPublishAsync(InterceptingPublishEventArgs e)
    {
        e.ProcessPublish = false;
        var registrationId = e.ClientId;
        var topic = e.ApplicationMessage.Topic ?? "";
        var rid = PropertyBag.QueryValue(topic, "$rid") ?? "";
        if (!authenticated.TryGetValue(registrationId, out var enrollment) || e.ApplicationMessage.QualityOfServiceLevel == MqttQualityOfServiceLevel.ExactlyOnce)
        {
            e.CloseConnection = true;
            return Task.CompletedTask;
        }

        if (topic.StartsWith("$dps/registrations/PUT/iotdps-register/", StringComparison.Ordinal))
        {
            JsonObject? body = null;
            try
            {
                body = e.ApplicationMessage.Payload.Length == 0 ? [] : JsonNode.Parse(e.ApplicationMessage.Payload.ToArray()) as JsonObject;
            }
            catch (JsonException)
            {
            }

            var bodyId = body?["registrationId"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
            if (body is null || (bodyId is not null && bodyId != registrationId))
            {
                Respond(registrationId, $"{ResponsePrefix}400/?$rid={rid}", Error(400, 400004, "The body is not a registration request for this registration id."));
                return Task.CompletedTask;
            }

            if (Tier?.TryTake(Tiers.TierOperation.DpsRegistrations, 1, out var registerWait) is not null)
            {
                Respond(registrationId, $"{ResponsePrefix}429/?$rid={rid}&retry-after={registerWait.ToString(CultureInfo.InvariantCulture)}", Error(429, 429001, "The rate of device registrations is used up; try again after retry-after seconds."));
                return Task.CompletedTask;
            }

            string operationId;
            try
            {
                operationId = dps.Register(registrationId, enrollment);
            }
            catch (HubError error)
            {
                Respond(registrationId, $"{ResponsePrefix}{error.Status.ToString(CultureInfo.InvariantCulture)}/?$rid={rid}", Error(error.Status, error.ErrorCode, error.Message));
                return Task.CompletedTask;
            }

            Respond(registrationId, $"{ResponsePrefix}202/?$rid={rid}&retry-after={retryAfterSeconds.ToString(CultureInfo.InvariantCulture)}",
                new JsonObject { ["operationId"] = operationId, ["status"] = "assigning" });
            return Task.CompletedTask;
        }

        if (topic.StartsWith("$dps/registrations/GET/iotdps-get-operationstatus/", StringComparison.Ordinal))
        {
            var operationId = PropertyBag.QueryValue(topic, "operationId") ?? "";
            if (Tier is not null && !Tier.TryPoll(registrationId, out var pollWait))
            {
                Respond(registrationId, $"{ResponsePrefix}429/?$rid={rid}&retry-after={pollWait.ToString(CultureInfo.InvariantCulture)}", Error(429, 429001, "A device may poll its registration 5 times in 10 seconds."));
                return Task.CompletedTask;
            }

            var state = dps.Operation(operationId);
            if (state is null || state["registrationState"]?["registrationId"]?.GetValue<string>() != registrationId)
            {
                Respond(registrationId, $"{ResponsePrefix}404/?$rid={rid}", Error(404, 404201, "The operation was not found."));
            }
            else
            {
                Respond(registrationId, $"{ResponsePrefix}200/?$rid={rid}", state);
            }

            return Task.CompletedTask;
        }

        log.Information($"DPS client '{registrationId}' published to a topic it may not use; closing the connection.");
        e.CloseConnection = true;
        return Task.CompletedTask;
    }

    private static JsonObject Error(int status, int code, string message) =>
        new() { ["errorCode"] = code, ["trackingId"] = Guid.NewGuid().ToString(), ["message"] = message, ["status"] = status };

    private void Respond(string registrationId, string topic, JsonObject body) => _ = RespondAsync(registrationId, topic, body);

    private async Task RespondAsync(string registrationId, string topic, JsonObject body)
    {
        if (server is null)
        {
            return;
        }

        try
        {
            var session = await server.GetSessionAsync(registrationId).ConfigureAwait(false);
            var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(Encoding.UTF8.GetBytes(body.ToJsonString()))
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtMostOnce).Build();
            session.TryEnqueueApplicationMessage(message, out _);
        }
        catch (InvalidOperationException)
        {
            // gone
        }
    }
}
