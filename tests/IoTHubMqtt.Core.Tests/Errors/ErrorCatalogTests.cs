using System.Net;
using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Provisioning;
using IoTHubMqtt.Core.Service;

namespace IoTHubMqtt.Core.Tests.Errors;

/// <summary>
/// The ErrorIds table: one entry per constant, and no ErrorId written as a string literal anywhere else in the sources,
/// so throwing, catching and retrying all go through it.
/// </summary>
public sealed partial class ErrorCatalogTests
{
    private static readonly string Src = Path.Combine(RepoRoot(), "src");

    [Fact]
    public void EveryConstant_HasAnEntry_AndIsItsOwnName()
    {
        var constants = typeof(ErrorIds).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral).ToList();

        Assert.Equal(constants.Count, ErrorCatalog.All.Count);
        Assert.All(constants, f =>
        {
            var id = (string)f.GetRawConstantValue()!;
            Assert.Equal(f.Name, id);
            var entry = ErrorCatalog.Get(id);
            Assert.Matches("^[A-Z][A-Za-z0-9]+$", id);
            Assert.True(entry.Meaning.Length > 10 && entry.Meaning.EndsWith('.'), $"{id}: the meaning '{entry.Meaning}' is not a sentence.");
            Assert.True(Enum.IsDefined(entry.Kind), id);
        });
    }

    [Fact]
    public void AnExceptionTakesItsKindAndTransienceFromTheTable()
    {
        var throttled = new IoTHubMqttException(ErrorIds.IoTHubThrottled, "throttled");
        var invalid = new IoTHubMqttException(ErrorIds.ConnectionStringEmpty, "empty");

        Assert.Equal(IoTHubErrorKind.Throttled, throttled.Kind);
        Assert.True(throttled.IsTransient);
        Assert.Equal(IoTHubErrorKind.InvalidArgument, invalid.Kind);
        Assert.False(invalid.IsTransient);
        Assert.Throws<ArgumentOutOfRangeException>(() => new IoTHubMqttException("NoSuchErrorId", "x"));
    }

    [Fact]
    public void NoErrorIdIsWrittenAsALiteral_OutsideTheTable()
    {
        var ids = ErrorCatalog.All.Keys.ToHashSet(StringComparer.Ordinal);
        var found = new List<string>();
        foreach (var file in Directory.GetFiles(Src, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(Src, file).Replace('\\', '/');
            if (relative.Contains("/obj/", StringComparison.Ordinal) || relative.Contains("/bin/", StringComparison.Ordinal) || relative == "IoTHubMqtt.Core/Errors/ErrorIds.cs")
            {
                continue;
            }

            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                foreach (Match m in LiteralRegex().Matches(lines[i]))
                {
                    if (ids.Contains(m.Groups[1].Value) && !IsWireCode(relative, lines[i]))
                    {
                        found.Add($"{relative}:{i + 1}: {lines[i].Trim()}");
                    }
                }
            }
        }

        Assert.True(found.Count == 0, "ErrorIds written as literals (use the ErrorIds constants):\n" + string.Join('\n', found));
    }

    /// <summary>
    /// IoT Hub's own error codes on the wire, some of which share a name with an ErrorId (DeviceNotFound…): the hub's
    /// answers matched by code, the emulator's answers, the documented code numbers, and doc comments.
    /// </summary>
    private static bool IsWireCode(string file, string line) =>
        line.TrimStart().StartsWith("///", StringComparison.Ordinal)
        || file.StartsWith("IoTHubMqtt.Emulator/", StringComparison.Ordinal) && (line.Contains("HubError(", StringComparison.Ordinal) || WireResponseRegex().IsMatch(line))
        || WireMatchRegex().IsMatch(line);

    [Theory]
    [InlineData(429, true)]
    [InlineData(401, false)]
    [InlineData(404, false)]
    [InlineData(500, false)]
    public void ProvisioningAnswers_AreRetriedExactlyWhenTheirErrorIsTransient(int status, bool retried)
    {
        var error = DpsClient.Failure(status, new JsonObject { ["message"] = "x" }, "{}", "reg-1", "0ne00000001");

        Assert.Equal(retried, error.IsTransient);
        Assert.Equal(error.IsTransient, ErrorCatalog.IsTransient(error.ErrorId));
    }

    [Theory]
    [InlineData(HttpStatusCode.TooManyRequests, ErrorIds.IoTHubThrottled, true)]
    [InlineData(HttpStatusCode.ServiceUnavailable, ErrorIds.IoTHubRequestFailed, true)]
    [InlineData(HttpStatusCode.MethodNotAllowed, ErrorIds.IoTHubRequestFailed, false)]
    [InlineData(HttpStatusCode.Unauthorized, ErrorIds.IoTHubUnauthorized, false)]
    [InlineData(HttpStatusCode.Conflict, ErrorIds.DeviceAlreadyExists, false)]
    public void ServiceAnswers_MapToAnErrorId_AndItsTransience(HttpStatusCode status, string errorId, bool transient)
    {
        var error = ServiceErrors.FromResponse(status, null, "{}", "d1", "Get device");

        Assert.Equal(errorId, error.ErrorId);
        Assert.Equal(transient, error.IsTransient);
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "IoTHubMqtt.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The repository root was not found.");
    }

    [GeneratedRegex("\"([A-Z][A-Za-z0-9]+)\"")]
    private static partial Regex LiteralRegex();

    /// <summary>A hub code matched or listed: <c>(404, "DeviceNotFound")</c>, <c>"DeviceNotFound" =&gt;</c>, <c>["DeviceNotFound"] = 404001</c>, <c>ErrorCode == "DeviceNotFound"</c>.</summary>
    [GeneratedRegex("""\(\d{3}, "\w+"\)|^\s*"\w+"( or "\w+")* =>|^\s*\["\w+"\] = \d{6}|ErrorCode == "\w+"|errorCode == "\w+"|HubErrorCode == "\w+""")]
    private static partial Regex WireMatchRegex();

    [GeneratedRegex("""new\(\d{3}, \d{6}, "\w+""")]
    private static partial Regex WireResponseRegex();
}
