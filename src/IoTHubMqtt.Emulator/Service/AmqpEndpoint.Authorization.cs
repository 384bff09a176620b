using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Principal;
using System.Text;
using Amqp;
using Amqp.Framing;
using Amqp.Listener;
using Amqp.Sasl;
using Amqp.Types;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Emulator.Hub;

namespace IoTHubMqtt.Emulator.Service;

/// <summary>
/// Who may use a connection: each CBS put-token (or a SASL PLAIN login) grants the token's audience until the token
/// expires, and a link is authorized when a grant's resource names its node or a parent of it. A token whose resource
/// lies under the Event Hub-compatible entity is checked by the Event Hubs rule (the key's text keys the HMAC), one for
/// the hub by the IoT Hub rule (the decoded key), one for the bare host by either.
/// </summary>
internal sealed partial class AmqpEndpoint
{
    private readonly ConditionalWeakTable<Connection, List<Grant>> grants = new();

    /// <summary>The host, and the host with this endpoint's own port, as a token or audience may name it.</summary>
    private string WithoutOwnPort(string resource)
    {
        var ownHost = hub.HostName + ":" + Port.ToString(CultureInfo.InvariantCulture);
        return resource.StartsWith(ownHost, StringComparison.OrdinalIgnoreCase) && (resource.Length == ownHost.Length || resource[ownHost.Length] == '/')
            ? hub.HostName + resource[ownHost.Length..]
            : resource;
    }

    /// <summary>A resource or audience as <c>host/path</c>: no scheme, no port of this endpoint, no trailing slash.</summary>
    private string ResourceOf(string audience)
    {
        var a = audience.Trim();
        var scheme = a.IndexOf("://", StringComparison.Ordinal);
        return WithoutOwnPort(scheme >= 0 ? a[(scheme + 3)..] : a).TrimEnd('/');
    }

    /// <summary>Which key rule signs a token for <paramref name="resource"/> (<c>host/path</c>).</summary>
    private SasKeyRule RuleFor(string resource)
    {
        var slash = resource.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return SasKeyRule.Either;
        }

        var path = resource[(slash + 1)..];
        var entity = hub.EventHubName;
        return path.StartsWith(entity, StringComparison.OrdinalIgnoreCase) && (path.Length == entity.Length || path[entity.Length] == '/')
            ? SasKeyRule.EventHubs
            : SasKeyRule.IoTHub;
    }

    /// <summary>
    /// Checks a policy token for <paramref name="audience"/>: returns the grant it makes, or null with the reason.
    /// </summary>
    private Grant? Authorize(string? token, string audience, out string reason)
    {
        SasTokenInfo parsed;
        try
        {
            parsed = SasToken.Parse(token ?? "");
        }
        catch (IoTHubMqttException)
        {
            reason = "the token is malformed";
            return null;
        }

        var tokenResource = ResourceOf(parsed.Resource);
        var target = ResourceOf(audience);
        if (!SasAuthenticator.IsResourcePrefix(hub.HostName, tokenResource))
        {
            reason = "the token is not for this hub";
            return null;
        }

        if (!SasAuthenticator.IsResourcePrefix(tokenResource, target))
        {
            reason = "the token's resource does not cover the audience";
            return null;
        }

        var permissions = HubPermissions.None;
        var info = authenticator.Validate(token, parsed.Resource, t =>
        {
            if (t.PolicyName is not null && hub.Policies.TryGetValue(t.PolicyName, out var policy))
            {
                permissions = policy.Permissions;
                return [policy.PrimaryKey, policy.SecondaryKey];
            }

            return [];
        }, RuleFor(tokenResource), out reason);
        if (info is null)
        {
            if (reason == "the signature does not match" && RuleFor(tokenResource) == SasKeyRule.EventHubs)
            {
                reason += " (the Event Hub-compatible endpoint signs with the key's text, as Event Hubs does)";
            }

            return null;
        }

        if (!permissions.HasFlag(HubPermissions.ServiceConnect))
        {
            reason = "the policy lacks the ServiceConnect permission";
            return null;
        }

        return new Grant(target, info.Expiry);
    }

    private void AddGrant(Connection connection, Grant grant)
    {
        var list = grants.GetValue(connection, _ => []);
        lock (list)
        {
            list.RemoveAll(g => g.Expires <= authenticator.Now);
            list.Add(grant);
        }
    }

    /// <summary>True when a token put on the link's connection, or its SASL PLAIN login, covers <paramref name="node"/>.</summary>
    private bool IsAuthorized(Link link, string node) => IsAuthorized(link.Session.Connection, node);

    private bool IsAuthorized(Connection connection, string node)
    {
        var resource = hub.HostName + "/" + node.TrimStart('/');
        var now = authenticator.Now;
        if (connection is ListenerConnection { Principal: SasPrincipal login } && login.Grants.Any(g => g.Covers(resource, now)))
        {
            return true;
        }

        if (grants.TryGetValue(connection, out var list))
        {
            lock (list)
            {
                return list.Any(g => g.Covers(resource, now));
            }
        }

        return false;
    }

    /// <summary>What a token or login allows: <see cref="Resource"/> (<c>host/path</c>) and everything under it, until <see cref="Expires"/>.</summary>
    private sealed record Grant(string Resource, DateTimeOffset Expires)
    {
        public bool Covers(string resource, DateTimeOffset now) => Expires > now && SasAuthenticator.IsResourcePrefix(Resource, resource);
    }

    private sealed class SasPrincipal(string name, IReadOnlyList<Grant> grants) : GenericPrincipal(new GenericIdentity(name, "PLAIN"), [])
    {
        public IReadOnlyList<Grant> Grants { get; } = grants;
    }

    /// <summary>A CBS put-token request: the token (the body) for the audience (<c>name</c>), as the CBS draft describes.</summary>
    private Message AnswerCbs(Connection connection, Message request)
    {
        var operation = request.ApplicationProperties?["operation"] as string;
        var audience = request.ApplicationProperties?["name"] as string ?? hub.HostName;
        int status;
        string description;
        if (operation != "put-token" || request.Body is not string token)
        {
            (status, description) = (400, "Expected a put-token request with the token as the body.");
        }
        else if (Authorize(token, audience, out var reason) is { } grant)
        {
            AddGrant(connection, grant);
            (status, description) = (200, "OK");
        }
        else
        {
            (status, description) = (401, $"Unauthorized: {reason}.");
        }

        log.Verbose($"AMQP CBS put-token for '{audience}': {status}.");
        return Reply(request, status, description);
    }

    private static Message Reply(Message request, int status, string description, object? body = null)
    {
        var response = new Message
        {
            Properties = new Properties { CorrelationId = request.Properties?.MessageId },
            ApplicationProperties = new ApplicationProperties(),
        };
        if (body is not null)
        {
            response.BodySection = new AmqpValue { Value = body };
        }

        response.ApplicationProperties["status-code"] = status;
        response.ApplicationProperties["status-description"] = description;
        return response;
    }

    /// <summary>
    /// SASL PLAIN, the way the hub and Event Hubs take it: <c>{policy}@sas.root.{hub}</c> with a policy SAS token as the
    /// password (what Microsoft's IoT Hub samples send), or the policy name with its key (Event Hubs and Service Bus).
    /// The listener negotiates one connection at a time, so the principal of the last exchange is the new connection's.
    /// </summary>
    private sealed class PlainLogin(AmqpEndpoint owner) : SaslProfile(new Symbol("PLAIN")), IAuthenticated
    {
        public IPrincipal? Principal { get; private set; }

        protected override ITransport UpgradeTransport(ITransport transport) => transport;

        protected override DescribedList GetStartCommand(string hostname) => throw new NotSupportedException("The server does not start SASL.");

        protected override DescribedList OnCommand(DescribedList command)
        {
            if (command is not SaslInit init)
            {
                throw new AmqpException(ErrorCode.NotAllowed, command.ToString());
            }

            Principal = null;
            var parts = Encoding.UTF8.GetString(init.InitialResponse ?? []).Split('\0');
            var (user, password) = parts.Length == 3 ? (parts[1], parts[2]) : ("", "");
            Principal = owner.Login(user, password, out var reason);
            owner.log.Verbose($"AMQP SASL PLAIN login as '{user}': {(Principal is null ? "refused, " + reason : "accepted")}.");
            return new SaslOutcome { Code = Principal is null ? SaslCode.Auth : SaslCode.Ok };
        }
    }

    /// <summary>
    /// SASL MSSBCBS, the mechanism the Azure .NET AMQP stack (Azure.Messaging.EventHubs) asks for: it means "no login
    /// now, CBS tokens follow", so it succeeds like ANONYMOUS.
    /// </summary>
    private sealed class CbsLater() : SaslProfile(new Symbol("MSSBCBS"))
    {
        protected override ITransport UpgradeTransport(ITransport transport) => transport;

        protected override DescribedList GetStartCommand(string hostname) => throw new NotSupportedException("The server does not start SASL.");

        protected override DescribedList OnCommand(DescribedList command) => command is SaslInit
            ? new SaslOutcome { Code = SaslCode.Ok }
            : throw new AmqpException(ErrorCode.NotAllowed, command.ToString());
    }

    private SasPrincipal? Login(string user, string password, out string reason)
    {
        var hubName = hub.HostName.Split('.')[0];
        var at = user.IndexOf("@sas.root.", StringComparison.OrdinalIgnoreCase);
        if (at > 0)
        {
            var policyName = user[..at];
            if (!string.Equals(user[(at + "@sas.root.".Length)..], hubName, StringComparison.OrdinalIgnoreCase))
            {
                reason = $"the user name is not for hub '{hubName}'";
                return null;
            }

            string resource;
            try
            {
                var parsed = SasToken.Parse(password);
                resource = parsed.Resource;
                if (parsed.PolicyName is not null && parsed.PolicyName != policyName)
                {
                    reason = "the token is of another policy than the user name";
                    return null;
                }
            }
            catch (IoTHubMqttException)
            {
                reason = "the password is not a SAS token";
                return null;
            }

            var grant = Authorize(password, resource, out reason);
            return grant is null ? null : new SasPrincipal(user, [grant]);
        }

        if (hub.Policies.TryGetValue(user, out var policy) && (password == policy.PrimaryKey || password == policy.SecondaryKey))
        {
            if (!policy.Permissions.HasFlag(HubPermissions.ServiceConnect))
            {
                reason = "the policy lacks the ServiceConnect permission";
                return null;
            }

            reason = "";
            return new SasPrincipal(user, [new Grant(hub.HostName, DateTimeOffset.MaxValue)]);
        }

        reason = "unknown policy or wrong key";
        return null;
    }

    /// <summary>
    /// A request/response node (<c>$cbs</c>, <c>$management</c>): requests arrive on a link to it, and each answer goes
    /// back on a link from it on the same connection: the one whose target address is the request's reply-to, or else
    /// one with no target address, as the Node.js IoT Hub SDK attaches it (the hub answers on it; AMQPNetLite's own
    /// request processor would look the reply-to up among all connections' target addresses).
    /// </summary>
    private sealed class RequestNode(AmqpEndpoint owner, string name, Func<Connection, Message, Message> answer)
    {
        private readonly ConditionalWeakTable<Connection, List<(string? Address, ListenerLink Link)>> replyLinks = new();

        public void Attach(AttachContext attachContext)
        {
            if (attachContext.Link.Role)
            {
                attachContext.Complete(new Requests(this), 100);
            }
            else
            {
                AttachReplies(attachContext);
            }
        }

        private void AttachReplies(AttachContext attachContext)
        {
            var link = attachContext.Link;
            var address = (attachContext.Attach.Target as Target)?.Address;
            var links = replyLinks.GetValue(link.Session.Connection, _ => []);
            lock (links)
            {
                links.Add((address, link));
            }

            link.Closed += (_, _) =>
            {
                lock (links)
                {
                    links.RemoveAll(l => l.Link == link);
                }
            };
            link.InitializeSender((_, _, _) => { }, (message, _, settled, _) =>
            {
                if (!settled)
                {
                    link.DisposeMessage(message, new Accepted(), true);
                }
            }, null);
            link.CompleteAttach(attachContext.Attach, null);
        }

        private void OnRequest(ListenerLink requestLink, Message request)
        {
            var connection = requestLink.Session.Connection;
            var replyTo = request.Properties?.ReplyTo;
            ListenerLink? replyLink = null;
            if (replyLinks.TryGetValue(connection, out var links))
            {
                lock (links)
                {
                    replyLink = links.FirstOrDefault(l => replyTo is not null && string.Equals(l.Address, replyTo, StringComparison.OrdinalIgnoreCase)).Link
                        ?? links.FirstOrDefault(l => string.IsNullOrEmpty(l.Address)).Link;
                }
            }

            Message response;
            try
            {
                response = answer(connection, request);
            }
            catch (Exception ex) when (ex is InvalidCastException or FormatException or OverflowException or ArgumentException)
            {
                response = Reply(request, 400, $"Bad request: {ex.Message}");
            }

            try
            {
                replyLink?.SendMessage(response);
            }
            catch (Exception ex) when (ex is AmqpException or ObjectDisposedException)
            {
                owner.log.Verbose($"AMQP {name} answer not sent: {ex.Message}");
            }
        }

        /// <summary>The link the requests arrive on.</summary>
        private sealed class Requests(RequestNode node) : LinkEndpoint
        {
            public override void OnMessage(MessageContext messageContext)
            {
                messageContext.Complete();
                node.OnRequest(messageContext.Link, messageContext.Message);
            }

            public override void OnFlow(FlowContext flowContext)
            {
            }

            public override void OnDisposition(DispositionContext dispositionContext)
            {
            }
        }
    }
}
