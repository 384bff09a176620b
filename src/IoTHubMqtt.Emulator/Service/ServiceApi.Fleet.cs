using System.Text.Json.Nodes;
using IoTHubMqtt.Emulator.Hub;
using IoTHubMqtt.Emulator.Http;
using IoTHubMqtt.Emulator.Registry;
using IoTHubMqtt.Emulator.Tiers;

namespace IoTHubMqtt.Emulator.Service;

/// <summary>The fleet-scale part of the service API: bulk registry calls, import/export jobs, and the emulated tier's throttles.</summary>
internal sealed partial class ServiceApi
{
    /// <summary>The emulated tier's throttles, or null (unthrottled).</summary>
    public TierThrottles? Tier { get; set; }

    /// <summary>Import and export jobs.</summary>
    public ImportExportJobs? Jobs { get; set; }

    private HttpResponse RouteFleet(HttpRequest request, string[] segments)
    {
        var jobs = Jobs ?? throw new HubError(404, 404000, "NotFound", "No such resource.");
        switch (segments)
        {
            case ["devices"]:
                Authorize(request, HubPermissions.RegistryWrite);
                return BulkRegistry.Apply(hub, request);
            case ["jobs", "create"] when request.Method == "POST":
                var body = BodyObject(request);
                var export = (body["type"] as JsonValue)?.ToString().StartsWith("export", StringComparison.OrdinalIgnoreCase) == true;
                Authorize(request, export ? HubPermissions.RegistryRead : HubPermissions.RegistryRead | HubPermissions.RegistryWrite);
                return jobs.Create(body);
            case ["jobs"] when request.Method == "GET":
                Authorize(request, HubPermissions.RegistryRead);
                return jobs.List();
            case ["jobs", var id] when request.Method == "GET":
                Authorize(request, HubPermissions.RegistryRead);
                return jobs.Get(id);
            case ["jobs", var id] when request.Method == "DELETE":
                Authorize(request, HubPermissions.RegistryWrite);
                return jobs.Cancel(id);
            default:
                throw new HubError(405, 405000, "GenericMethodNotAllowed", $"{request.Method} is not allowed on this resource.");
        }
    }

    /// <summary>
    /// Takes what an authorized request costs from the emulated tier's throttles (nothing without a tier), or throws the
    /// hub's 429 ThrottlingException with Retry-After (403 OperationNotAvailableInCurrentTier in a basic tier).
    /// </summary>
    private void ChargeTier(HttpRequest request)
    {
        if (Tier is not { } tier)
        {
            return;
        }

        var s = request.Segments;
        var extension = s.Length > 0 && s[0] == "$emulator";
        if (extension)
        {
            if (s is [_, "devices", _, "messages", "devicebound"])
            {
                tier.Take(TierOperation.CloudToDevice);
            }

            return;
        }

        TierOperation? operation = s switch
        {
            ["devices", "query"] => TierOperation.Queries,
            ["devices", ..] => TierOperation.Registry,
            ["twins", .., "methods"] => TierOperation.DirectMethods,
            ["twins", ..] when request.Method == "GET" => TierOperation.TwinReads,
            ["twins", ..] => TierOperation.TwinUpdates,
            ["jobs", ..] => TierOperation.Jobs,
            ["enrollments" or "enrollmentGroups", ..] => TierOperation.DpsOperations,
            _ => null,
        };
        var cost = s switch
        {
            // A bulk call counts each device ("the same throttle limits apply"); a direct method each 4 KB of payload.
            ["devices"] when request.Method == "POST" => BulkRegistry.CountDevices(request.Body),
            ["twins", .., "methods"] => Math.Max(1, Math.Ceiling(request.Body.Length / 4096.0)),
            _ => 1.0,
        };
        if (operation is { } charged)
        {
            tier.Take(charged, cost);
        }
    }
}
