using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Net;
using System.Security;
using IoTHubMqtt.Commands.Fleet;
using IoTHubMqtt.Core.Service;

namespace IoTHubMqtt.Completion;

/// <summary>
/// Tab completion for -DeviceId: device ids from the hub's registry, starting with what is typed. The hub is the one
/// of -Connection or -ConnectionString (a policy string, with -Port and -CaCertificatePath) already on the command
/// line, else the session's Connect-IoTHubService connection. Bounded by <see cref="Timeout"/>; nothing on any error.
/// </summary>
public sealed class DeviceIdCompleter : IArgumentCompleter
{
    /// <summary>The longest a completion waits for the hub.</summary>
    internal static TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(3);

    private const int MaxResults = 500;

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        try
        {
            var prefix = CompletionText.Unquote(wordToComplete);
            return DeviceIds(fakeBoundParameters, prefix)
                .Select(id => new CompletionResult(CompletionText.Quote(id), id, CompletionResultType.ParameterValue, id))
                .ToList();
        }
#pragma warning disable CA1031 // A completer must never surface an error while the user types.
        catch (Exception)
#pragma warning restore CA1031
        {
            return [];
        }
    }

    private static List<string> DeviceIds(IDictionary? bound, string prefix)
    {
        IoTHubServiceClient? oneOff = null;
        try
        {
            IoTHubServiceClient? client;
            if (Bound(bound, "Connection") is IoTHubServiceConnection connection)
            {
                client = connection.Client;
            }
            else if (Secret(Bound(bound, "ConnectionString")) is { } connectionString
                     && connectionString.Contains("SharedAccessKeyName=", StringComparison.OrdinalIgnoreCase))
            {
                client = oneOff = new IoTHubServiceClient(new IoTHubServiceOptions
                {
                    ConnectionString = connectionString,
                    Port = Bound(bound, "Port") is int port and > 0 ? port : null,
                    CaCertificatePath = Bound(bound, "CaCertificatePath") is string ca ? FullPath(ca) : null,
                });
            }
            else
            {
                client = DefaultServiceConnection.Current?.Client;
            }

            if (client is null)
            {
                return [];
            }

            // Off the pipeline thread, so a synchronization context cannot stall it; the timeout bounds the wait.
            using var cancel = new CancellationTokenSource(Timeout);
            var query = Task.Run(() => QueryAsync(client, prefix, cancel.Token), cancel.Token);
            return query.Wait(Timeout + TimeSpan.FromMilliseconds(250)) ? query.Result : [];
        }
        finally
        {
            oneOff?.Dispose();
        }
    }

    private static async Task<List<string>> QueryAsync(IoTHubServiceClient client, string prefix, CancellationToken cancellationToken)
    {
        var ids = new List<string>();
        string? continuation = null;
        do
        {
            var page = await client.QueryDevicesAsync(continuation, 1000, cancellationToken).ConfigureAwait(false);
            ids.AddRange(page.Devices.Select(d => d.DeviceId).Where(id => id.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)));
            continuation = page.Continuation;
        }
        while (continuation is not null && ids.Count < MaxResults);

        ids.Sort(StringComparer.OrdinalIgnoreCase);
        return ids.Count > MaxResults ? ids.GetRange(0, MaxResults) : ids;
    }

    private static object? Bound(IDictionary? bound, string name)
    {
        if (bound is null || !bound.Contains(name))
        {
            return null;
        }

        var value = bound[name];
        return value is PSObject pso ? pso.BaseObject : value;
    }

    private static string? Secret(object? value) => value switch
    {
        string s when s.Length > 0 => s,
        SecureString secure => new NetworkCredential(string.Empty, secure).Password,
        PSCredential credential => credential.GetNetworkCredential().Password,
        _ => null,
    };

    /// <summary>A relative path is relative to PowerShell's current location, as the cmdlet will resolve it.</summary>
    private static string FullPath(string path)
    {
        if (Path.IsPathRooted(path))
        {
            return path;
        }

        using var shell = PowerShell.Create(RunspaceMode.CurrentRunspace);
        var location = shell.AddCommand("Microsoft.PowerShell.Management\\Get-Location").Invoke().FirstOrDefault()?.BaseObject as PathInfo;
        return Path.GetFullPath(path, location?.ProviderPath ?? Environment.CurrentDirectory);
    }
}
