using System.Globalization;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Emulator.Http;

namespace IoTHubMqtt.Emulator.Provisioning;

/// <summary>A symmetric-key enrollment: individual (keys of one registration) or group (keys from which device keys are derived).</summary>
internal sealed record Enrollment(string Id, bool IsGroup, string PrimaryKey, string SecondaryKey, string? DeviceId, JsonObject? InitialDesired)
{
    public override string ToString() => $"{(IsGroup ? "Group" : "Individual")} enrollment {Id}";
}

/// <summary>DPS state: enrollments and registration operations; assigning a registration creates the device in the hub.</summary>
internal sealed class DpsState(HubState hub, string idScope)
{
    private readonly object gate = new();
    private readonly Dictionary<string, Enrollment> individual = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Enrollment> groups = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JsonObject> operations = new(StringComparer.Ordinal);

    public string IdScope { get; } = idScope;

    public Enrollment AddEnrollment(string id, bool group, string? primaryKey, string? secondaryKey, string? deviceId = null, JsonObject? initialDesired = null)
    {
        if (group)
        {
            IdentityValidator.ThrowIfInvalidRegistrationId(id.ToLowerInvariant());
        }
        else
        {
            IdentityValidator.ThrowIfInvalidRegistrationId(id);
        }

        var enrollment = new Enrollment(id, group, primaryKey ?? SharedAccessKeys.Generate(64), secondaryKey ?? SharedAccessKeys.Generate(64), deviceId, initialDesired);
        SharedAccessKeys.Decode(enrollment.PrimaryKey, "PrimaryKey");
        SharedAccessKeys.Decode(enrollment.SecondaryKey, "SecondaryKey");
        lock (gate)
        {
            (group ? groups : individual)[id] = enrollment;
        }

        return enrollment;
    }

    /// <summary>The keys a registration may sign with: its individual enrollment's, else each group's derived key.</summary>
    public IEnumerable<(Enrollment Enrollment, string Key)> CandidateKeys(string registrationId)
    {
        List<Enrollment> snapshot;
        lock (gate)
        {
            if (individual.TryGetValue(registrationId, out var own))
            {
                return [(own, own.PrimaryKey), (own, own.SecondaryKey)];
            }

            snapshot = [.. groups.Values];
        }

        return snapshot.SelectMany(g => new[]
        {
            (g, SharedAccessKeys.DeriveDeviceKey(g.PrimaryKey, registrationId)),
            (g, SharedAccessKeys.DeriveDeviceKey(g.SecondaryKey, registrationId)),
        });
    }

    /// <summary>Registers a device: creates (or re-keys) it in the hub and records an assigned operation; returns the operation id.</summary>
    public string Register(string registrationId, Enrollment enrollment)
    {
        var deviceId = enrollment.DeviceId ?? registrationId;
        var primary = enrollment.IsGroup ? SharedAccessKeys.DeriveDeviceKey(enrollment.PrimaryKey, registrationId) : enrollment.PrimaryKey;
        var secondary = enrollment.IsGroup ? SharedAccessKeys.DeriveDeviceKey(enrollment.SecondaryKey, registrationId) : enrollment.SecondaryKey;
        var body = new JsonObject
        {
            ["deviceId"] = deviceId,
            ["authentication"] = new JsonObject
            {
                ["type"] = "sas",
                ["symmetricKey"] = new JsonObject { ["primaryKey"] = primary, ["secondaryKey"] = secondary },
            },
        };
        var substatus = "initialAssignment";
        if (hub.FindDevice(deviceId) is { } existing)
        {
            substatus = "reprovisionedToInitialAssignment";
            if (existing.PrimaryKey != primary || existing.SecondaryKey != secondary)
            {
                hub.PutDevice(deviceId, body, "*");
            }
        }
        else
        {
            hub.PutDevice(deviceId, body, null);
            if (enrollment.InitialDesired is { Count: > 0 } desired)
            {
                hub.PatchTwin(deviceId, new JsonObject { ["properties"] = new JsonObject { ["desired"] = desired.DeepClone() } }, null);
            }
        }

        var now = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        var operationId = "4." + Guid.NewGuid().ToString("N")[..16] + "." + Guid.NewGuid().ToString();
        var state = new JsonObject
        {
            ["operationId"] = operationId,
            ["status"] = "assigned",
            ["registrationState"] = new JsonObject
            {
                ["registrationId"] = registrationId,
                ["createdDateTimeUtc"] = now,
                ["assignedHub"] = hub.HostName,
                ["deviceId"] = deviceId,
                ["status"] = "assigned",
                ["substatus"] = substatus,
                ["lastUpdatedDateTimeUtc"] = now,
                ["etag"] = DeviceIdentity.NewETag(),
            },
        };
        lock (gate)
        {
            operations[operationId] = state;
        }

        return operationId;
    }

    public JsonObject? Operation(string operationId)
    {
        lock (gate)
        {
            return operations.TryGetValue(operationId, out var state) ? (JsonObject)state.DeepClone() : null;
        }
    }

    /// <summary>DPS service API: PUT/GET/DELETE <c>/enrollments/{id}</c> and <c>/enrollmentGroups/{id}</c> (symmetric keys only).</summary>
    public HttpResponse HandleEnrollment(string method, string id, bool group, JsonObject? body)
    {
        switch (method)
        {
            case "PUT":
                var attestation = body?["attestation"] as JsonObject;
                var type = attestation?["type"]?.GetValue<string>() ?? "symmetricKey";
                if (type != "symmetricKey")
                {
                    throw HubError.BadRequest("The emulator supports symmetricKey attestation only.");
                }

                Enrollment created;
                try
                {
                    created = AddEnrollment(id, group, attestation?["symmetricKey"]?["primaryKey"]?.GetValue<string>(),
                        attestation?["symmetricKey"]?["secondaryKey"]?.GetValue<string>(), body?["deviceId"]?.GetValue<string>(),
                        body?["initialTwin"]?["properties"]?["desired"]?.DeepClone() as JsonObject);
                }
                catch (Core.Errors.IoTHubMqttException ex)
                {
                    throw HubError.BadRequest(ex.Message);
                }

                return HttpResponse.Json(200, ToJson(created));
            case "GET":
                lock (gate)
                {
                    return (group ? groups : individual).TryGetValue(id, out var found)
                        ? HttpResponse.Json(200, ToJson(found))
                        : throw new HubError(404, 404201, "NotFound", $"Enrollment {id} not found.");
                }

            case "DELETE":
                lock (gate)
                {
                    return (group ? groups : individual).Remove(id) ? new HttpResponse(204) : throw new HubError(404, 404201, "NotFound", $"Enrollment {id} not found.");
                }

            default:
                throw new HubError(405, 405001, "MethodNotAllowed", $"{method} is not allowed on enrollments.");
        }
    }

    private static JsonObject ToJson(Enrollment e)
    {
        var json = new JsonObject
        {
            [e.IsGroup ? "enrollmentGroupId" : "registrationId"] = e.Id,
            ["attestation"] = new JsonObject
            {
                ["type"] = "symmetricKey",
                ["symmetricKey"] = new JsonObject { ["primaryKey"] = e.PrimaryKey, ["secondaryKey"] = e.SecondaryKey },
            },
            ["provisioningStatus"] = "enabled",
        };
        if (e.DeviceId is not null)
        {
            json["deviceId"] = e.DeviceId;
        }

        return json;
    }
}
